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
. scripts/lib.sh

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

# 2. System packages: none so far beyond what the toolchain needs (a C compiler for ring and
#    SQLite); the tests' own come from the scripts/*-deps.sh that scripts/test.sh runs.

# 3. The meeting page `lilt serve` answers at / and /<room> (host/web into host/web/dist, from
#    pinned npm packages; docs/meeting-page.md). It needs the network and no compiler, so it
#    runs in the background while cargo compiles; its output is shown when it is done.
mkdir -p target
web_log=target/setup-web.log
bash scripts/web.sh >"$web_log" 2>&1 &
web=$!
trap 'kill "$web" 2>/dev/null || true' EXIT

# 4. Builds, in the release profile (Cargo.toml: Lilt's own crates keep overflow checks and
#    debug assertions there). The plugins are WebAssembly components the host loads from
#    target/wasm32-wasip2/release; the integration tests use target/release/lilt.
#    The test crate's smallest example (`hook_cost`) is built with the server on purpose: it
#    makes cargo resolve the dependencies' features as the test build does (the tests'
#    dev-dependencies add a few), so lilt and its dependencies are compiled once, in the variant
#    the tests then reuse, and not once more by scripts/test.sh. (Naming the test crate without
#    building one of its targets does not do it: cargo then leaves its dependencies out of the
#    resolution, and a fresh clone's test build compiled lilt a second time.) The price is the
#    test clients (tokio-xmpp, xmpp-parsers at opt-level 1, reqwest) in the first command.
phase "the server, release"
cargo build --release -p lilt -p lilt-tests --bin lilt --example hook_cost
phase "the plugins, wasm32-wasip2"
cargo build --release --target wasm32-wasip2 -p auth-anonymous -p auth-internal -p auth-ldap -p auth-jwt \
    -p conference-duration -p speakerstats -p av-moderation -p branding -p test-hooks -p test-auth

phase "waiting for the meeting page"
if ! wait "$web"; then
    cat "$web_log"
    echo "setup.sh: building the meeting page failed (above)" >&2
    exit 1
fi
cat "$web_log"
phase "toolchain ${channel}, host (release), plugins and the meeting page are built"
