#!/usr/bin/env bash
# Routing across cores: the release server under the load generator (tests/examples/loadgen.rs)
# in three set-ups on this machine, each server started fresh per scenario:
#   1 core      server pinned to core 0 (one routing shard: available_parallelism is 1),
#               generators pinned to core 1;
#   2 cores, 1 shard   server on cores 0-1 with limits.router_shards = 1 (the old single
#               router), generators on cores 0-1 too;
#   2 cores     server on cores 0-1 with its default (one shard per core), generators on 0-1.
# On a 2-core machine the 2-core set-ups share both cores with the generators: the generators'
# own CPU is then part of the limit, and the table says so. Scenarios:
#   rooms   two generators, each 100 rooms x 10 occupants, every occupant sending RATE
#           messages a second for 10 s (offered deliveries/s = 2 x 100 x 10 x 10 x RATE);
#   sweep   one room grown (1 message per occupant per second, 10 s) until p99 delivery
#           passes 100 ms or under 99 % arrive.
# Bounded: every loadgen run stops by itself (its own hard limit is 300 s). Writes
# target/bench/scale.jsonl and the table target/bench/scale.md.
#
# Usage: scripts/scale_bench.sh [RATE...]   (default rates: 2 5 10)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ROOT=$(pwd)
RATES=("$@")
[ "${#RATES[@]}" -gt 0 ] || RATES=(2 5 10)

bash scripts/setup.sh --release
cargo build --release -p lilt-tests --example loadgen

OUT="$ROOT/target/bench"
WORK=$(mktemp -d)
PID=""
trap 'stop; rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
: > "$OUT/scale.jsonl"
LG="$ROOT/target/release/examples/loadgen"
LILT="$ROOT/target/release/lilt"
ulimit -n 65536 2>/dev/null || true

config() { # shards ("auto" or a number)
    local shards=""
    [ "$1" = auto ] || shards="router_shards = $1"
    cat > "$WORK/lilt.toml" <<EOF
data_dir = "$WORK/lilt-data"
plugin_dir = "$ROOT/target/wasm32-wasip2/release"
log_level = "warn"
[limits]
max_connections = 50000
session_queue_stanzas = 100000
$shards
[[listeners]]
type = "c2s"
bind = "127.0.0.1:16222"
[[vhosts]]
domain = "anon.test"
allow_unencrypted = true
auth = { plugin = "auth-anonymous" }
[vhosts.muc]
domain = "conference.anon.test"
max_rooms_per_user = 100000
EOF
}

start() { # cpus
    stop
    taskset -c "$1" "$LILT" serve --config "$WORK/lilt.toml" >"$WORK/lilt.log" 2>&1 &
    PID=$!
    wait_port lilt 16222 "$PID" "$WORK/lilt.log" || exit 1
}

stop() {
    stop_pid "$PID"
    PID=""
}

gen() { # cpus label args...
    local cpus=$1 label=$2; shift 2
    taskset -c "$cpus" "$LG" muc --addr 127.0.0.1:16222 --domain anon.test \
        --muc conference.anon.test --pid "$PID" --label "$label" "$@"
}

# One scenario: the server fresh, N generators at once; one JSON line with their sums.
run() { # setup server_cpus gen_cpus shards scenario generators args...
    local setup=$1 scpus=$2 gcpus=$3 shards=$4 scenario=$5 n=$6; shift 6
    config "$shards"
    start "$scpus"
    local files=()
    for i in $(seq 1 "$n"); do
        gen "$gcpus" "$setup" "$@" > "$WORK/gen$i.json" &
        files+=("$WORK/gen$i.json")
    done
    wait $(jobs -p | grep -v "^$PID$") 2>/dev/null || true
    python3 - "$setup" "$scenario" "${files[@]}" <<'PY' | tee -a "$OUT/scale.jsonl"
import json, sys
setup, scenario, files = sys.argv[1], sys.argv[2], sys.argv[3:]
rs = [json.loads(open(f).read().strip().splitlines()[-1]) for f in files]
ops = sum(r["ops"] for r in rs)
expected = ops + sum(r["errors"] for r in rs)
secs = max(r["seconds"] for r in rs)
cpu = max(r["server_cpu_seconds"] for r in rs)  # each saw the same server over its run
print(json.dumps({
    "setup": setup, "scenario": scenario,
    "deliveries_per_s": ops / secs, "delivered_share": ops / expected if expected else 0,
    "p50_ms": max(r["p50_ms"] for r in rs), "p99_ms": max(r["p99_ms"] for r in rs),
    "server_cpu_s": cpu, "server_us_per_delivery": cpu * 1e6 / ops if ops else 0,
    "note": " | ".join(r["note"] for r in rs),
}))
PY
    stop
}

SETUPS=("1 core:0:1:auto" "2 cores, 1 shard:0-1:0-1:1" "2 cores:0-1:0-1:auto")
for s in "${SETUPS[@]}"; do
    IFS=: read -r setup scpus gcpus shards <<<"$s"
    for rate in "${RATES[@]}"; do
        run "$setup" "$scpus" "$gcpus" "$shards" "rooms@$rate" 2 \
            --rooms 100 --occupants 10 --rate "$rate" --seconds 10
    done
    for n in 200 300 400 600 800 1000; do
        line=$(run "$setup" "$scpus" "$gcpus" "$shards" "room@$n" 1 \
            --occupants "$n" --rate 1 --seconds 10 | tail -1)
        python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if r["p99_ms"] < 100 and r["delivered_share"] >= 0.99 else 1)' "$line" || break
    done
done

python3 - "$OUT/scale.jsonl" > "$OUT/scale.md" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
setups = list(dict.fromkeys(r["setup"] for r in rows))
print("| scenario | " + " | ".join(setups) + " |")
print("|---|" + "---|" * len(setups))
def cell(r):
    return (f'{r["deliveries_per_s"]:,.0f}/s, {100*r["delivered_share"]:.0f} % arrived, '
            f'p99 {r["p99_ms"]:.1f} ms, {r["server_us_per_delivery"]:.2f} µs CPU/delivery')
for sc in dict.fromkeys(r["scenario"] for r in rows if r["scenario"].startswith("rooms")):
    by = {r["setup"]: r for r in rows if r["scenario"] == sc}
    rate = sc.split("@")[1]
    print(f"| 200 rooms × 10, {rate} msg/s each | " + " | ".join(cell(by[s]) if s in by else "–" for s in setups) + " |")
best = {}
for r in rows:
    if r["scenario"].startswith("room@") and r["p99_ms"] < 100 and r["delivered_share"] >= 0.99:
        best[r["setup"]] = max(best.get(r["setup"], 0), int(r["scenario"].split("@")[1]))
print("| largest room with p99 < 100 ms at 1 msg/s per occupant | " + " | ".join(f'{best.get(s, "< 200")} occupants' for s in setups) + " |")
PY
cat "$OUT/scale.md"
