#!/usr/bin/env bash
# The lib-jitsi-meet browser bundle, out of the npm tarball pinned by
# tests/browser/lib-jitsi-meet.json (package, version, sha512 integrity, files), into DEST:
#   scripts/lib-jitsi-meet.sh DEST
# Shared by scripts/browser-deps.sh (DEST tests/browser/vendor) and scripts/web.sh (the meeting
# page, DEST host/web/vendor). The package's own dependencies point at git repositories npm
# cannot fetch here, and the bundle does not need them, so the tarball is fetched alone with
# `npm pack`, checked against the pinned integrity, and only the listed files are extracted.
# Nothing is done when DEST already holds the files of that same tarball. Needs node and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -ne 1 ]; then
    echo "usage: scripts/lib-jitsi-meet.sh DEST" >&2
    exit 2
fi
vendor=$1
pin=tests/browser/lib-jitsi-meet.json
pin_get() { node -e 'const p = require(process.argv[1]); console.log(p[process.argv[2]]);' "$(realpath "$pin")" "$1"; }
pkg=$(pin_get package)
version=$(pin_get version)
integrity=$(pin_get integrity)
stamp="$vendor/.integrity"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$integrity" ] && [ -f "$vendor/lib-jitsi-meet.min.js" ]; then
    echo "lib-jitsi-meet.sh: $pkg@$version already in $vendor"
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
    echo "lib-jitsi-meet.sh: $pkg@$version has integrity $actual, pinned $integrity; refusing it" >&2
    exit 1
fi

rm -rf "$vendor"
mkdir -p "$tmp/x" "$vendor"
# Extract the listed files only, then move each to its name in DEST.
node -e 'const p = require(process.argv[1]); for (const [from, to] of Object.entries(p.files)) console.log(from + "\t" + to);' \
    "$(realpath "$pin")" >"$tmp/files"
cut -f1 "$tmp/files" | xargs tar -xzf "$tarball" -C "$tmp/x"
while IFS=$'\t' read -r from to; do
    mv "$tmp/x/$from" "$vendor/$to"
done <"$tmp/files"
echo "$integrity" >"$stamp"
echo "lib-jitsi-meet.sh: $pkg@$version extracted into $vendor"
