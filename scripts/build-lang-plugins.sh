#!/usr/bin/env bash
# Build the brand plugin in its three languages, for tests/all/brand_langs.rs: the Rust one
# (examples/brand-plugin, into target/wasm32-wasip2/release) and the JavaScript and Python ones
# (examples/brand-plugin-{js,py}/build/brand_plugin.wasm, with the toolchains of
# scripts/plugin-langs-deps.sh, which it runs first). A JS or Python build is skipped when its
# component is newer than every file it is made from (its sources, the SDK, wit/).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/plugin-langs-deps.sh

cargo build --release --target wasm32-wasip2 --manifest-path examples/brand-plugin/Cargo.toml --target-dir target

# up_to_date OUT INPUT...: OUT exists and no file under the inputs is newer.
up_to_date() {
    local out=$1
    shift
    [ -f "$out" ] && [ -z "$(find -L "$@" -type f -newer "$out" -not -path '*/build/*' -not -path '*/__pycache__/*' -print -quit)" ]
}

for lang in js py; do
    ex=examples/brand-plugin-$lang
    sdk=plugins/sdk-$lang
    [ "$lang" = py ] && sdk=plugins/sdk-py/lilt_plugin
    out=$ex/build/brand_plugin.wasm
    if up_to_date "$out" "$ex" "$sdk" wit scripts/plugin-langs-deps.sh; then
        echo "build-lang-plugins.sh: $out is up to date"
    else
        start=$(date +%s)
        bash "$ex/build.sh"
        echo "build-lang-plugins.sh: $out ($(stat -c %s "$out") bytes) in $(( $(date +%s) - start )) s"
    fi
done
