#!/usr/bin/env bash
# Lilt and Prosody side by side, on this machine, in one run: the same vhosts (an anonymous
# one with a MUC component, one with SCRAM accounts), the same scenarios driven by the same
# load generator (tests/examples/loadgen.rs), each server started fresh for each scenario and
# pinned to core 0 while the generator runs on core 1. CPU time and memory come from each
# server process's own /proc accounting. Writes target/bench/results.jsonl and the table
# target/bench/table.md, and copies the table into docs/performance.md.
#
# Installs what it needs: Prosody 0.12 from Debian (apt-get), the toolchain and plugins
# (scripts/setup.sh). Bounded: every scenario stops by itself (loadgen's own limits).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

bash scripts/setup.sh --release
cargo build --release -p lilt-tests --example loadgen
if ! command -v prosody >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends prosody lua-unbound >/dev/null
    # The package starts a system instance; this run uses its own.
    $SUDO systemctl stop prosody 2>/dev/null || $SUDO service prosody stop 2>/dev/null || true
fi

CORES=$(nproc)
SERVER_CPU=0
GEN_CPU=$(( CORES > 1 ? 1 : 0 ))
OUT="$ROOT/target/bench"
WORK=$(mktemp -d)
trap 'pkill -f "$WORK" 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
: > "$OUT/results.jsonl"
LG="$ROOT/target/release/examples/loadgen"
LILT="$ROOT/target/release/lilt"
USERS=20
PASSWORD=pw-bench-$$

# --- Lilt ------------------------------------------------------------------------------------
cat > "$WORK/lilt.toml" <<EOF
data_dir = "$WORK/lilt-data"
plugin_dir = "$ROOT/target/wasm32-wasip2/release"
log_level = "warn"
[limits]
max_connections = 50000
session_queue_stanzas = 100000
[[listeners]]
type = "c2s"
bind = "127.0.0.1:15222"
[[listeners]]
type = "http"
bind = "127.0.0.1:15280"
[[vhosts]]
domain = "anon.test"
allow_unencrypted = true
auth = { plugin = "auth-anonymous" }
[vhosts.muc]
domain = "conference.anon.test"
[[vhosts]]
domain = "scram.test"
allow_unencrypted = true
# Prosody's default iteration count, so both servers store the same kind of credentials.
auth = { plugin = "auth-internal", settings = { iterations = 10000 } }
EOF
for i in $(seq 0 $((USERS - 1))); do
    echo "$PASSWORD" | "$LILT" user add "u$i@scram.test" --config "$WORK/lilt.toml" >/dev/null
done

# --- Prosody ---------------------------------------------------------------------------------
mkdir -p "$WORK/prosody-data" "$WORK/certs"
cat > "$WORK/prosody.cfg.lua" <<EOF
pidfile = "$WORK/prosody.pid"
data_path = "$WORK/prosody-data"
certificates = "$WORK/certs"
run_as_root = true
log = { warn = "$WORK/prosody.log" }
c2s_ports = { 25222 }
c2s_interfaces = { "127.0.0.1" }
s2s_ports = { }
http_ports = { 25280 }
http_interfaces = { "127.0.0.1" }
https_ports = { }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
consider_websocket_secure = true
modules_enabled = { "roster", "saslauth", "disco", "ping", "websocket" }
modules_disabled = { "s2s", "tls" }
storage = "internal"
authentication = "internal_hashed"
VirtualHost "anon.test"
    authentication = "anonymous"
Component "conference.anon.test" "muc"
    restrict_room_creation = false
    muc_room_locking = false
    muc_room_default_public_jids = true
    muc_room_default_history_length = 0
VirtualHost "scram.test"
    authentication = "internal_hashed"
EOF
for i in $(seq 0 $((USERS - 1))); do
    prosodyctl --config "$WORK/prosody.cfg.lua" register "u$i" scram.test "$PASSWORD" >/dev/null 2>&1
done

# --- Running ---------------------------------------------------------------------------------
for port in 15222 15280 25222 25280; do
    if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
        echo "bench.sh: something already listens on 127.0.0.1:$port; stop it first" >&2
        exit 1
    fi
done

PID=""
start() { # server
    stop
    if [ "$1" = lilt ]; then
        taskset -c $SERVER_CPU "$LILT" serve --config "$WORK/lilt.toml" >"$WORK/lilt.log" 2>&1 &
        PID=$!
        PORT=15222; HTTP=15280
    else
        rm -f "$WORK/prosody.pid"
        taskset -c $SERVER_CPU prosody --config "$WORK/prosody.cfg.lua" -F >"$WORK/prosody.out" 2>&1 &
        PID=$!
        PORT=25222; HTTP=25280
    fi
    for _ in $(seq 1 100); do
        (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0
        sleep 0.1
    done
    echo "bench.sh: $1 did not start" >&2
    cat "$WORK/$1.log" "$WORK/prosody.out" 2>/dev/null | tail -20 >&2
    exit 1
}
stop() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
        PID=""
    fi
}
run() { # server scenario args...
    local server=$1; shift
    start "$server"
    local addr="127.0.0.1:$PORT"
    case " $* " in *" --transport ws "*) addr="127.0.0.1:$HTTP" ;; esac
    taskset -c $GEN_CPU "$LG" "$@" --addr "$addr" --pid "$PID" --label "$server" \
        | tee -a "$OUT/results.jsonl"
    stop
}

for server in lilt prosody; do
    run $server login-anon --domain anon.test --count 3000 --concurrency 50
    run $server login-anon --domain anon.test --count 2000 --concurrency 50 --transport ws
    run $server login-scram --domain scram.test --count 1000 --concurrency 50 --users $USERS --password "$PASSWORD"
    run $server idle --domain anon.test --count 3000 --concurrency 50
    run $server idle --domain anon.test --count 2000 --concurrency 50 --transport ws
    run $server muc --domain anon.test --muc conference.anon.test --occupants 50 --rate 1 --seconds 10
    run $server muc --domain anon.test --muc conference.anon.test --occupants 100 --rate 1 --seconds 10
    run $server presence --domain anon.test --muc conference.anon.test --occupants 100 --rate 1 --seconds 10
    # Where does p99 delivery latency pass 100 ms? Grow the room until it does (or until 800).
    # (50 and 100 above are the first steps.)
    for n in 200 300 400 600 800; do
        line=$(run $server muc --domain anon.test --muc conference.anon.test --occupants $n --rate 1 --seconds 10 | tail -1)
        python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if r["p99_ms"] < 100 and r["errors"] <= r["ops"] // 100 else 1)' "$line" || break
    done
done

python3 "$ROOT/scripts/bench_table.py" "$OUT/results.jsonl" "$(nproc)" > "$OUT/table.md"
python3 - "$ROOT/docs/performance.md" "$OUT/table.md" <<'PY'
import sys, re
doc, table = sys.argv[1], open(sys.argv[2]).read()
text = open(doc).read()
start, end = "<!-- bench:start -->", "<!-- bench:end -->"
text = re.sub(re.escape(start) + ".*?" + re.escape(end), start + "\n" + table + end, text, flags=re.S)
open(doc, "w").write(text)
PY
cat "$OUT/table.md"
echo "bench.sh: results in $OUT/results.jsonl; table copied into docs/performance.md"
