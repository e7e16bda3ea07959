#!/usr/bin/env bash
# Build brand-plugin-py into build/brand_plugin.wasm with the pinned componentize-py of Lilt's
# checkout (the venv target/plugin-langs-venv made by scripts/plugin-langs-deps.sh). The world
# is wit/brand.wit with Lilt's wit/ as its deps/lilt-plugin (assembled in build/wit); the app
# is app.py, with this folder and plugins/sdk-py on the Python path (lilt_plugin here is a link for
# the native tests, which componentize-py does not follow).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lilt=${LILT_CHECKOUT:-$(cd "$here/../.." && pwd)}
componentize="$lilt/target/plugin-langs-venv/bin/componentize-py"
[ -x "$componentize" ] || { echo "build.sh: $componentize missing; run $lilt/scripts/plugin-langs-deps.sh" >&2; exit 1; }
rm -rf "$here/build/wit"
mkdir -p "$here/build/wit/deps/lilt-plugin"
cp "$here"/wit/*.wit "$here/build/wit/"
cp "$lilt"/wit/*.wit "$here/build/wit/deps/lilt-plugin/"
cd "$here"
"$componentize" -d build/wit -w brand-plugin componentize -p "$here" -p "$lilt/plugins/sdk-py" app -o build/brand_plugin.wasm
echo "built $here/build/brand_plugin.wasm"
