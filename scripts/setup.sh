#!/usr/bin/env bash
# Idempotent machine and build setup for Lilt.
#   scripts/setup.sh   toolchain + wasm target, the host in release, plugins (wasm, release),
#                      the meeting page (scripts/web.sh)
# Both README commands start with it (scripts/run.sh and scripts/test.sh), and both use this one
# release build: the server runs target/release/lilt and the tests test it, so whichever runs
# second compiles only what is its own. `--release` is accepted and changes nothing (older
# callers pass it). Safe to run again: every step is a no-op when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

for arg in "$@"; do
    case "$arg" in
        --release) ;;
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

# 3. Builds, in the release profile (Cargo.toml: Lilt's own crates keep overflow checks and
#    debug assertions there). The plugins are WebAssembly components the host loads from
#    target/wasm32-wasip2/release; the integration tests use target/release/lilt.
#    The test crate's smallest example (`hook_cost`) is built with the server on purpose: it
#    makes cargo resolve the dependencies' features as the test build does (the tests'
#    dev-dependencies add a few), so lilt and its dependencies are compiled once, in the variant
#    the tests then reuse, and not once more by scripts/test.sh.
cargo build --release -p lilt -p lilt-tests --bin lilt --example hook_cost
cargo build --release --target wasm32-wasip2 -p auth-anonymous -p auth-internal -p auth-ldap -p auth-jwt \
    -p conference-duration -p speakerstats -p av-moderation -p branding -p test-hooks -p test-auth
# 4. The meeting page `lilt serve` answers at / and /<room> (host/web into host/web/dist, from
#    pinned npm packages; docs/meeting-page.md).
bash scripts/web.sh
echo "setup.sh: toolchain ${channel}, host (release), plugins and the meeting page are built"
