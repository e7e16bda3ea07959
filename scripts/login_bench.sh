#!/usr/bin/env bash
# Login latency and server CPU of token and directory authentication next to anonymous logins,
# against a release `lilt`:
# - auth-jwt (the ignored test `jwt::login_bench`): N logins each of anonymous, HS256, RS256
#   with a cached key and RS256 with a key fetched per login, xmpp.js over WebSocket;
# - auth-ldap (the ignored test `ldap::ldap_login_bench`): N logins each of anonymous and PLAIN
#   against a local slapd (search-then-bind and DN template), over STARTTLS.
# Prints a Markdown table for each.
#   scripts/login_bench.sh [N]      N logins per kind (default 200)
# Needs what scripts/test.sh installs (node with tests/js, scripts/jwt-deps.sh, scripts/ldap-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-200}
bash scripts/jwt-deps.sh >/dev/null
cargo build --release -p lilt
bash scripts/ldap-deps.sh >/dev/null
cargo build --release --target wasm32-wasip2 -p auth-anonymous -p auth-internal -p auth-jwt -p auth-ldap
for bench in jwt::login_bench ldap::ldap_login_bench; do
    log=target/login_bench.${bench%%::*}.log
    if ! LILT_BIN="$PWD/target/release/lilt" LILT_LOG=warn LILT_BENCH_LOGINS="$n" \
        cargo test -p lilt-tests --test all -- --ignored --exact "$bench" --nocapture >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "login_bench.sh: $bench failed; its whole output is in $log" >&2
        exit 1
    fi
    grep -E '^\||sequential logins' "$log"
done
