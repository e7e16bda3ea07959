#!/usr/bin/env bash
# What the TURN tests (tests/all/turn.rs) need, idempotently: coturn's `turnserver` and its
# test client `turnutils_uclient`, from Debian, installed with apt-get when missing. The tests
# start their own turnserver on a loopback port with flags of their own; the system's coturn
# service is not configured or used (Debian ships it disabled).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v turnserver >/dev/null 2>&1 || ! command -v turnutils_uclient >/dev/null 2>&1; then
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends coturn
fi
