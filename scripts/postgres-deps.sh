#!/usr/bin/env bash
# What the PostgreSQL storage tests need (tests/all/postgres.rs and the storage unit tests in
# host/src/storage), idempotently: Debian's `postgresql` (initdb, pg_ctl, psql), installed with
# apt-get when missing. The tests start their own server on a loopback port in a temp folder
# (as the `postgres` user when run as root); the system's cluster is not configured or used.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

have_pg() {
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1
}

if ! have_pg || ! command -v runuser >/dev/null 2>&1; then
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        postgresql util-linux
fi
