#!/usr/bin/env bash
# Idempotent machine and build setup for Lilt.
#   scripts/setup.sh            toolchain + wasm target, host (debug), plugins (wasm, release),
#                               the meeting page (scripts/web.sh)
#   scripts/setup.sh --release  the same, host in release (what scripts/run.sh uses)
# Safe to run again: every step is a no-op when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

host_profile=debug
for arg in "$@"; do
    case "$arg" in
        --release) host_profile=release ;;
        *) echo "setup.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done

# 1. Toolchain: the channel pinned in rust-toolchain.toml, with the wasm32-wasip2 target.
channel=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if command -v rustup >/dev/null 2>&1; then
    if ! rustup toolchain list | grep -q "^${channel}"; then
        rustup toolchain install "$channel" --profile minimal --component rustfmt,clippy
    fi
    if ! rustup target list --installed --toolchain "$channel" | grep -qx wasm32-wasip2; then
        rustup target add wasm32-wasip2 --toolchain "$channel"
    fi
else
    echo "setup.sh: rustup not found; assuming cargo ${channel} with wasm32-wasip2 is installed" >&2
fi

# 2. System packages. None are needed so far; list them here when that changes.
apt_packages=()
missing=()
for p in "${apt_packages[@]+"${apt_packages[@]}"}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# 3. Builds. The plugins are WebAssembly components the host loads from
#    target/wasm32-wasip2/release; the integration tests use target/<profile>/lilt.
if [ "$host_profile" = release ]; then
    cargo build --release -p lilt
else
    # Default members together, so the binary shares the dependency build of the tests.
    cargo build
fi
cargo build --release --target wasm32-wasip2 -p auth-anonymous -p auth-internal -p auth-ldap -p auth-jwt \
    -p conference-duration -p speakerstats -p av-moderation -p branding -p test-hooks -p test-auth
# 4. The meeting page `lilt serve` answers at / and /<room> (host/web into host/web/dist, from
#    pinned npm packages; docs/meeting-page.md).
bash scripts/web.sh
echo "setup.sh: toolchain ${channel}, host (${host_profile}), plugins and the meeting page are built"
