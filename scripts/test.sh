#!/usr/bin/env bash
# Everything CI runs: setup, the Node clients of tests/js, the workspace's default members
# (unit tests and the end-to-end tests in tests/all against target/release/lilt), the plugin
# crates' native tests, and the JavaScript and Python plugin SDKs' and examples' native tests.
# The fuzz smoke run (fuzz/tests/smoke.rs) is one of the default members' tests.
# The Rust tests build in the release profile, the one scripts/run.sh serves from: one build
# for both commands (Lilt's own crates keep overflow checks and debug assertions there; see
# Cargo.toml and docs/performance.md, "Set-up time").
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

phase "start"
# Node.js first, in the foreground: the meeting page that setup.sh builds needs it, and the
# installs below run beside setup.sh.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
fi

# What needs only the network and dpkg runs in the background while setup.sh compiles (on a
# fresh machine these downloads and installs took minutes, all of them waiting on the network
# or the disk while both cores compiled): the browser-side XMPP libraries the end-to-end tests
# drive under Node (xmpp.js, Strophe.js, pinned by tests/js/package-lock.json), Chromium and
# lib-jitsi-meet, slapd, PyJWT, coturn, PostgreSQL, and the JavaScript and Python plugin
# toolchains. Its output is shown once it is done, all of it when it failed.
mkdir -p target
deps_log=target/test-deps.log
(
    set -e
    (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
    bash scripts/browser-deps.sh
    bash scripts/ldap-deps.sh
    bash scripts/jwt-deps.sh
    bash scripts/turn-deps.sh
    bash scripts/postgres-deps.sh
    bash scripts/plugin-langs-deps.sh
    phase "test dependencies installed"
) >"$deps_log" 2>&1 &
deps=$!
background=("$deps")
trap 'kill "${background[@]}" 2>/dev/null || true' EXIT

bash scripts/setup.sh
phase "setup done; waiting for the test dependencies"
if ! wait "$deps"; then
    cat "$deps_log"
    echo "test.sh: installing the test dependencies failed (above)" >&2
    exit 1
fi
tail -n 15 "$deps_log"

# Formatting first: a change rustfmt would rewrite fails here, not in review.
cargo fmt --all -- --check

# Plugins in JavaScript and Python: the brand plugin built in Rust, JS and Python (compared by
# tests/all/brand_langs.rs), and the native tests of the JS and Python SDKs and example
# plugins, under plain Node and CPython. The JS and Python builds are mostly single-threaded,
# so they run in the background while cargo builds the Rust tests (the Rust brand plugin's
# short cargo build, first, takes target/'s lock before or after the test build's).
phase "Rust test build, and the plugins in JavaScript and Python beside it"
langs_log=target/test-lang-plugins.log
(
    set -e
    bash scripts/build-lang-plugins.sh
    node --test plugins/sdk-js/test/ examples/brand-plugin-js/test/
    (cd plugins/sdk-py && python3 -m unittest discover -s tests -t .)
    (cd examples/brand-plugin-py && python3 -m unittest discover -s tests -t .)
    phase "plugins in JavaScript and Python built and tested"
) >"$langs_log" 2>&1 &
langs=$!
background+=("$langs")

nextest=false
if cargo nextest --version >/dev/null 2>&1; then
    nextest=true
    cargo nextest run --release --no-run
else
    cargo test --release --no-run
fi
if ! wait "$langs"; then
    cat "$langs_log"
    echo "test.sh: the JavaScript and Python plugins failed (above)" >&2
    exit 1
fi
cat "$langs_log"

phase "Rust tests"
# Default members (host, proto, sfu, tests, fuzz); `cargo test` at the root of a virtual
# workspace with default-members tests exactly those.
if $nextest; then
    cargo nextest run --release --no-fail-fast
    # nextest does not run doctests.
    cargo test --release --doc
else
    cargo test --release --no-fail-fast
fi

phase "plugin crates' native tests"
# Plugin policy logic and the SDK, natively. (Built in the background at the lowest CPU
# priority, beside the Rust tests, a fresh clone's whole run took longer: 948 s against 915.)
cargo test --release -p auth-internal -p auth-ldap -p auth-jwt -p lilt-plugin-sdk -p speakerstats \
    -p av-moderation -p conference-duration -p branding

# The example plugin outside the workspace (examples/brand-plugin): its native tests and its
# wasm32-wasip2 build, so the SDK cannot break a plugin written against it. It shares target/
# (and Lilt's profiles), so the dependencies already built above are reused.
cargo test --release --manifest-path examples/brand-plugin/Cargo.toml --target-dir target
cargo build --release --target wasm32-wasip2 --manifest-path examples/brand-plugin/Cargo.toml --target-dir target

phase "all suites passed"
