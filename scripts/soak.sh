#!/usr/bin/env bash
# The hostile-client soak (tracker issue 14) against a release `lilt`: builds the server, the
# plugins and tests/examples/soak.rs, starts the server on loopback with the documented default
# limits (plus `limit_loopback = true`, so the flood from 127.0.0.2 is held to
# max_unauthenticated_per_address), runs the soak and prints its table and JSON line.
# Exit status: the soak's (0 passed, 1 a lost message or a wrong error, 2 RSS over the bound).
#
# Usage: scripts/soak.sh [soak options…]   e.g. --seconds 60 --normal 40 --rooms 8
# Bounded: the soak stops by itself (its --max-seconds, default 120, plus fixed allowances).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ROOT=$(pwd)

bash scripts/setup.sh --release >/dev/null
cargo build --release -p lilt -p lilt-tests --example soak

WORK=$(mktemp -d)
PID=""
cleanup() {
    stop_pid "$PID"
    rm -rf "$WORK"
}
trap cleanup EXIT
C2S=${SOAK_C2S_PORT:-15422}
HTTP=${SOAK_HTTP_PORT:-15480}
ports_free "$C2S" "$HTTP" || { echo "soak.sh: set SOAK_C2S_PORT/SOAK_HTTP_PORT" >&2; exit 1; }
cat > "$WORK/lilt.toml" <<TOML
data_dir = "$WORK/data"
plugin_dir = "$ROOT/target/wasm32-wasip2/release"
log_level = "warn"
[limits]
limit_loopback = true
[[listeners]]
type = "c2s"
bind = "127.0.0.1:$C2S"
[[listeners]]
type = "http"
bind = "127.0.0.1:$HTTP"
[[vhosts]]
domain = "anon.test"
allow_unencrypted = true
auth = { plugin = "auth-anonymous" }
[vhosts.muc]
domain = "conference.anon.test"
TOML
"$ROOT/target/release/lilt" serve --config "$WORK/lilt.toml" >"$WORK/lilt.log" 2>&1 &
PID=$!
wait_port lilt "$C2S" "$PID" "$WORK/lilt.log" 30 || exit 1
wait_port lilt "$HTTP" "$PID" "$WORK/lilt.log" 30 || exit 1
echo "soak.sh: lilt pid $PID on 127.0.0.1:$C2S (c2s) and :$HTTP (http), $(nproc) cores"
status=0
"$ROOT/target/release/examples/soak" --c2s "127.0.0.1:$C2S" --http "127.0.0.1:$HTTP" --pid "$PID" "$@" || status=$?
if ! kill -0 "$PID" 2>/dev/null; then
    echo "soak.sh: the server died during the soak" >&2
    tail -40 "$WORK/lilt.log" >&2
    status=3
fi
echo "soak.sh: server log warnings: $(grep -c WARN "$WORK/lilt.log" || true); last lines:"
tail -5 "$WORK/lilt.log" | cut -c1-300
exit $status
