#!/usr/bin/env bash
# What the real-browser tests (tests/browser, tests/all/meeting.rs) need, idempotently:
# - Chromium from Debian (/usr/bin/chromium), installed with apt-get when missing;
# - Node.js and npm, when missing;
# - tests/browser/node_modules (playwright-core, jquery) from its package-lock.json (`npm ci`);
# - tests/browser/vendor/: the lib-jitsi-meet browser bundle, out of the npm tarball pinned by
#   tests/browser/lib-jitsi-meet.json (package, version, sha512 integrity). The package's own
#   dependencies point at git repositories npm cannot fetch here, and the bundle does not need
#   them, so the tarball is fetched with `npm pack`, checked against the pinned integrity, and
#   only the bundle and its licence are extracted. Nothing is done when vendor/ already holds
#   the files of that same tarball.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=
apt_install() {
    if [ -z "$apt_updated" ]; then
        as_root apt-get update
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

if [ ! -x /usr/bin/chromium ]; then
    apt_install chromium
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
fi

dir=tests/browser
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)

pin="$dir/lib-jitsi-meet.json"
pin_get() { node -e 'const p = require(process.argv[1]); console.log(p[process.argv[2]]);' "$(realpath "$pin")" "$1"; }
pkg=$(pin_get package)
version=$(pin_get version)
integrity=$(pin_get integrity)
vendor="$dir/vendor"
stamp="$vendor/.integrity"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$integrity" ] && [ -f "$vendor/lib-jitsi-meet.min.js" ]; then
    echo "browser-deps.sh: $pkg@$version already in $vendor"
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# `npm pack` downloads the tarball only (no dependencies, no install scripts).
(cd "$tmp" && npm pack "$pkg@$version" --silent >/dev/null)
tarball=$(ls "$tmp"/*.tgz)
actual="sha512-$(node -e '
    const h = require("crypto").createHash("sha512");
    h.update(require("fs").readFileSync(process.argv[1]));
    console.log(h.digest("base64"));' "$tarball")"
if [ "$actual" != "$integrity" ]; then
    echo "browser-deps.sh: $pkg@$version has integrity $actual, pinned $integrity; refusing it" >&2
    exit 1
fi

rm -rf "$vendor"
mkdir -p "$tmp/x" "$vendor"
# Extract the listed files only, then move each to its name in vendor/.
node -e 'const p = require(process.argv[1]); for (const [from, to] of Object.entries(p.files)) console.log(from + "\t" + to);' \
    "$(realpath "$pin")" >"$tmp/files"
cut -f1 "$tmp/files" | xargs tar -xzf "$tarball" -C "$tmp/x"
while IFS=$'\t' read -r from to; do
    mv "$tmp/x/$from" "$vendor/$to"
done <"$tmp/files"
echo "$integrity" >"$stamp"
echo "browser-deps.sh: $pkg@$version extracted into $vendor"
