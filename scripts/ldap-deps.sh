#!/usr/bin/env bash
# What the directory tests (tests/all/ldap.rs) need, idempotently: OpenLDAP's server `slapd`
# and its tools (`slapadd`, `ldapsearch`), from Debian, installed with apt-get when missing.
# The tests start their own slapd on a loopback port with a configuration of their own; the
# system's slapd service is not configured or used (the package's debconf questions are
# answered with defaults, non-interactively).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v slapd >/dev/null 2>&1 && [ ! -x /usr/sbin/slapd ]; then
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slapd ldap-utils
fi
