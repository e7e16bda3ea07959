#!/usr/bin/env bash
# What the real-browser tests (tests/browser, tests/all/meeting.rs) need, idempotently:
# - Chromium from Debian (/usr/bin/chromium), installed with apt-get when missing;
# - Node.js and npm, when missing;
# - tc (Debian iproute2), when missing: the simulcast test narrows one browser's link with it;
# - tests/browser/node_modules (playwright-core, jquery) from its package-lock.json (`npm ci`);
# - tests/browser/vendor/: the lib-jitsi-meet browser bundle, out of the npm tarball pinned by
#   tests/browser/lib-jitsi-meet.json (package, version, sha512 integrity), by
#   scripts/lib-jitsi-meet.sh (shared with the meeting page's scripts/web.sh): the tarball is
#   fetched alone with `npm pack`, checked against the pinned integrity, and only the bundle
#   and its licence are extracted; nothing is done when vendor/ already holds that tarball.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh


if [ ! -x /usr/bin/chromium ]; then
    apt_install chromium
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
fi
if ! command -v tc >/dev/null 2>&1; then
    apt_install iproute2
fi

dir=tests/browser
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)

# The bundle, by the script the meeting page shares (scripts/web.sh).
bash scripts/lib-jitsi-meet.sh "$dir/vendor"
