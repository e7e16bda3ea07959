#!/usr/bin/env bash
# What the TURN tests (tests/all/turn.rs) need, idempotently: coturn's `turnserver` and its
# test client `turnutils_uclient`, from Debian, installed with apt-get when missing. The tests
# start their own turnserver on a loopback port with flags of their own; the system's coturn
# service is not configured or used (Debian ships it disabled).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh

if ! command -v turnserver >/dev/null 2>&1 || ! command -v turnutils_uclient >/dev/null 2>&1; then
    apt_install coturn
fi
