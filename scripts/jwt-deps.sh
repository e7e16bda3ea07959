#!/usr/bin/env bash
# What the token tests (tests/all/jwt.rs) need, idempotently: PyJWT and cryptography, an
# implementation of JWT signing nobody here wrote, in a virtualenv at target/jwt-venv (pinned
# versions from PyPI; installed only when missing or at other versions). Also the openssl CLI
# (the tests make their RSA key pairs with it) and python3's venv module, from Debian when
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."

pins=(PyJWT==2.10.1 cryptography==44.0.3)
venv=target/jwt-venv

. scripts/lib.sh

missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
fi

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" - "${pins[@]}" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    assert version(name) == want, pin
PY
then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}"
fi
"$venv/bin/python" -c 'import jwt, cryptography; print("jwt-deps.sh: PyJWT", jwt.__version__, "cryptography", cryptography.__version__)'
