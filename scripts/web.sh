#!/usr/bin/env bash
# Builds the meeting page (host/web) into host/web/dist, which `lilt serve` answers at / and
# /<room> (docs/meeting-page.md). Idempotent; scripts/setup.sh runs it.
# - Node.js and npm, installed with apt-get when missing;
# - host/web/node_modules (jQuery) from host/web/package-lock.json (`npm ci`, only when the
#   lock changed since the last install);
# - host/web/vendor: the lib-jitsi-meet bundle from its pinned npm tarball
#   (scripts/lib-jitsi-meet.sh, shared with the browser tests);
# - host/web/build.mjs: copies src/ and those two bundles into dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
fi

web=host/web
if ! cmp -s "$web/package-lock.json" "$web/node_modules/.package-lock.json.installed" 2>/dev/null; then
    (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$web/package-lock.json" "$web/node_modules/.package-lock.json.installed"
fi
bash scripts/lib-jitsi-meet.sh "$web/vendor"
node "$web/build.mjs"
