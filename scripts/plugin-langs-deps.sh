#!/usr/bin/env bash
# The pinned toolchains that build Lilt plugins written in JavaScript and Python, installed
# into the checkout, idempotently (a second run only checks versions, in about a second):
#   plugins/js/node_modules      @bytecodealliance/componentize-js 0.23.0 (with jco), by
#                                `npm ci` from plugins/js/package-lock.json
#   target/plugin-langs-venv     componentize-py 0.25.1, by pip into a virtualenv
# Node.js, npm and python3's venv module come from Debian when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

componentize_js=0.23.0
componentize_py=0.25.1
venv=target/plugin-langs-venv

. scripts/lib.sh

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
fi

# JavaScript: npm ci only when the installed tree is not the locked one.
installed_js=$(node -p "try { require('./plugins/js/node_modules/@bytecodealliance/componentize-js/package.json').version } catch { '' }" 2>/dev/null || true)
if [ "$installed_js" != "$componentize_js" ] \
    || [ plugins/js/package-lock.json -nt plugins/js/node_modules/.package-lock.json ]; then
    (cd plugins/js && npm ci --no-audit --no-fund --loglevel=error)
fi

# Python: a virtualenv of its own, componentize-py at the pinned version.
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "from importlib.metadata import version; assert version('componentize-py') == '$componentize_py'" >/dev/null 2>&1; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "componentize-py==$componentize_py"
fi

echo "plugin-langs-deps.sh: componentize-js $(plugins/js/node_modules/.bin/componentize-js --version)," \
    "$("$venv/bin/componentize-py" --version)"
