#!/usr/bin/env bash
# What the PostgreSQL storage tests need (tests/all/postgres.rs and the storage unit tests in
# host/src/storage), idempotently: Debian's `postgresql` (initdb, pg_ctl, psql), installed with
# apt-get when missing. The tests start their own server on a loopback port in a temp folder
# (as the `postgres` user when run as root); the system's cluster is not configured or used.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh

have_pg() {
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1
}

if ! have_pg || ! command -v runuser >/dev/null 2>&1; then
    apt_install postgresql util-linux
fi
