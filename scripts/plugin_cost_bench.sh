#!/usr/bin/env bash
# Cost per tenant of a hook plugin in Rust, JavaScript and Python (docs/plugins.md, "Cost per
# tenant"): the same brand plugin (examples/brand-plugin{,-js,-py}, built by
# scripts/build-lang-plugins.sh with the toolchains of scripts/plugin-langs-deps.sh) loaded by
# 1, 10 and 100 vhosts of a release `lilt`. Per cell: startup with a cold and a warm artifact
# cache, RSS idle and per extra vhost, RSS once every vhost made a call, and the hook call
# time from the server's own metrics (scripts/plugin_cost_bench.py does the measuring).
#   scripts/plugin_cost_bench.sh [REPS] [VHOSTS] [LANGS]
#     REPS    warm starts per cell (default 3; medians are printed)
#     VHOSTS  comma-separated vhost counts (default 1,10,100)
#     LANGS   comma-separated among rust,js,py (default all three)
#   LILT_BIN=path   bench that binary instead of building target/release/lilt
#   RELEASED_WAIT=s seconds to wait, in the first warm run with the most vhosts, after every
#                   vhost made a call, before measuring RSS again (default 70: past the 60 s
#                   after which idle instances are dropped; 0 skips it)
# Bounded: one cold and REPS warm starts per cell, each start at most 60 s, 20 queries each,
# plus one RELEASED_WAIT per language.
# Noisy on a shared machine: compare medians of several runs.
set -euo pipefail
cd "$(dirname "$0")/.."

reps=${1:-3}
vhosts=${2:-1,10,100}
langs=${3:-rust,js,py}

if [ -z "${LILT_BIN:-}" ]; then
    cargo build --release -p lilt --bin lilt
    LILT_BIN=$PWD/target/release/lilt
fi
cargo build --release --target wasm32-wasip2 -p auth-anonymous
bash scripts/build-lang-plugins.sh >/dev/null

args=()
for lang in ${langs//,/ }; do
    case $lang in
        rust) args+=(--plugin "rust=$PWD/target/wasm32-wasip2/release/brand_plugin.wasm") ;;
        js) args+=(--plugin "js=$PWD/examples/brand-plugin-js/build/brand_plugin.wasm") ;;
        py) args+=(--plugin "py=$PWD/examples/brand-plugin-py/build/brand_plugin.wasm") ;;
        *) echo "plugin_cost_bench.sh: unknown language $lang (rust, js, py)" >&2; exit 2 ;;
    esac
done

work=target/plugin-cost-bench
rm -rf "$work"
mkdir -p "$work"
python3 scripts/plugin_cost_bench.py --bin "$LILT_BIN" --work "$PWD/$work" \
    --plugin-dir target/wasm32-wasip2/release --vhosts "$vhosts" --reps "$reps" \
    --released-wait "${RELEASED_WAIT:-70}" \
    --json "$work/runs.json" "${args[@]}"
