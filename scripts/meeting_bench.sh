#!/usr/bin/env bash
# Server cost of a real meeting: CPU and RSS of `lilt serve` (release build) while N headless
# Chromium participants running lib-jitsi-meet exchange audio and video through it, for each N
# given (default: 2 4). The browsers run on the same machine, so only lilt's own process is
# measured (/proc/PID/stat and /proc/PID/status), over a fixed window after media flows.
#
#   scripts/meeting_bench.sh [N ...]          e.g. scripts/meeting_bench.sh 2 4
#
# The fake cameras capture at RESOLUTION (default 720), so Chrome sends three simulcast
# layers and every receiver gets the top one.
#
# Needs: target/release/lilt and the plugins (cargo build --release -p lilt; scripts/setup.sh),
# and the browser tooling (scripts/browser-deps.sh). Every run is bounded by meet.mjs's
# --timeout and this script's own timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
counts=("$@")
[ ${#counts[@]} -eq 0 ] && counts=(2 4)
window=${WINDOW:-20}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 20000))
cat >"$work/lilt.toml" <<EOF
data_dir = "$work/data"
plugin_dir = "$root/target/wasm32-wasip2/release"
log_level = "warn"
[[listeners]]
type = "http"
bind = "127.0.0.1:$port"
[sfu]
bind = "127.0.0.1:0"
[[vhosts]]
domain = "localhost"
allow_unencrypted = true
[vhosts.auth]
plugin = "auth-anonymous"
[vhosts.muc]
domain = "conference.localhost"
[vhosts.focus]
EOF
"$root/target/release/lilt" serve --config "$work/lilt.toml" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$port/about/health" >/dev/null && break
    sleep 0.2
done
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
idle=$(rss_kib)
echo "lilt idle: RSS $((idle / 1024)) MiB"
printf '%-12s %-14s %-14s %-16s %-18s\n' participants "CPU (% core)" "CPU/particip." "RSS (MiB)" "RSS/particip. (MiB)"
for n in "${counts[@]}"; do
    # Media flows once meet.mjs has seen growing bytes; the window starts when it prints READY.
    (cd tests/browser && timeout $((window + 120)) node meet.mjs --participants "$n" \
        --room "bench$n" --domain localhost --http-port "$port" --expect media \
        --resolution "${RESOLUTION:-720}" \
        --timeout 120 --wait $((window + 15)) >"$work/report$n.json" 2>"$work/browsers$n.log") &
    node_pid=$!
    # Wait until every participant's media is up (the SFU's view), then measure the window.
    for _ in $(seq 300); do
        up=$(curl -sf "http://127.0.0.1:$port/stats" | python3 -c '
import json, sys
m = json.load(sys.stdin).get("media", {})
print(sum(1 for c in m.get("by_conference", []) for e in c["endpoints"] if e["dtls_connected"]))' || echo 0)
        [ "$up" -ge "$n" ] && break
        sleep 0.2
    done
    sleep 3
    c0=$(cpu); t0=$(date +%s.%N)
    sleep "$window"
    c1=$(cpu); t1=$(date +%s.%N)
    rss=$(rss_kib)
    wait "$node_pid" || echo "meet.mjs with $n participants failed: see $work/browsers$n.log" >&2
    python3 - "$n" "$c0" "$c1" "$t0" "$t1" "$ticks" "$rss" "$idle" <<'PY'
import sys
n, c0, c1, t0, t1, ticks, rss, idle = sys.argv[1:]
n = int(n)
pct = (float(c1) - float(c0)) / float(ticks) / (float(t1) - float(t0)) * 100
rss, idle = int(rss) / 1024, int(idle) / 1024
print(f"{n:<12} {pct:<14.1f} {pct / n:<14.1f} {rss:<16.1f} {(rss - idle) / n:<18.2f}")
PY
    sleep 2
done
