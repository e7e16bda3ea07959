#!/usr/bin/env bash
# Login latency and server CPU of token authentication (auth-jwt) next to plain anonymous
# logins: N sequential logins each of anonymous, HS256, RS256 with a cached key and RS256 with
# a key fetched per login, against a release `lilt` (the ignored test `jwt::login_bench` in
# tests/all/jwt.rs). Prints a Markdown table.
#   scripts/login_bench.sh [N]      N logins per kind (default 200)
# Needs what scripts/test.sh installs (node with tests/js, scripts/jwt-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-200}
bash scripts/jwt-deps.sh >/dev/null
cargo build --release -p lilt
cargo build --release --target wasm32-wasip2 -p auth-anonymous -p auth-internal -p auth-jwt
log=target/login_bench.log
if ! LILT_BIN="$PWD/target/release/lilt" LILT_LOG=warn LILT_BENCH_LOGINS="$n" \
    cargo test -p lilt-tests --test all -- --ignored --exact jwt::login_bench --nocapture >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "login_bench.sh: the bench failed; its whole output is in $log" >&2
    exit 1
fi
grep -E '^\||sequential logins' "$log"
