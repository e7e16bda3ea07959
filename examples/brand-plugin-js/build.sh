#!/usr/bin/env bash
# Build brand-plugin-js into build/brand_plugin.wasm with the pinned componentize-js of Lilt's
# checkout (plugins/js, installed by scripts/plugin-langs-deps.sh). The sources and the SDK
# (lilt-sdk, a link to plugins/sdk-js) are copied into build/stage first: componentize-js reads
# modules only under the directory it runs in. The world is wit/brand.wit with Lilt's wit/ as
# its deps/lilt-plugin. `-d http -d fetch-event` leave out wasi:http, which Lilt refuses.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lilt=${LILT_CHECKOUT:-$(cd "$here/../.." && pwd)}
componentize="$lilt/plugins/js/node_modules/.bin/componentize-js"
[ -x "$componentize" ] || { echo "build.sh: $componentize missing; run $lilt/scripts/plugin-langs-deps.sh" >&2; exit 1; }
stage="$here/build/stage"
rm -rf "$stage"
mkdir -p "$stage/wit/deps/lilt-plugin"
cp -rL "$here/src" "$here/lilt-sdk" "$stage/"
cp "$here"/wit/*.wit "$stage/wit/"
cp "$lilt"/wit/*.wit "$stage/wit/deps/lilt-plugin/"
cd "$stage"
"$componentize" src/plugin.js --wit wit --world-name brand-plugin -d http -d fetch-event \
    -o "$here/build/brand_plugin.wasm"
echo "built $here/build/brand_plugin.wasm"
