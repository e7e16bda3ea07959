#!/usr/bin/env bash
# What the directory tests (tests/all/ldap.rs) need, idempotently: OpenLDAP's server `slapd`
# and its tools (`slapadd`, `ldapsearch`), from Debian, installed with apt-get when missing.
# The tests start their own slapd on a loopback port with a configuration of their own; the
# system's slapd service is not configured or used (the package's debconf questions are
# answered with defaults, non-interactively).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh

if ! command -v slapd >/dev/null 2>&1 && [ ! -x /usr/sbin/slapd ]; then
    apt_install slapd ldap-utils
fi
