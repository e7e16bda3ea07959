#!/usr/bin/env bash
# Run Lilt locally with its embedded defaults: vhost localhost, anonymous auth, data in
# ./lilt-data, a generated self-signed certificate; c2s on 5222, direct TLS on 5223,
# components on 5347, HTTP (WebSocket /xmpp-websocket, BOSH /http-bind, /about/health,
# /metrics) on 5280 and HTTPS on 5281. Extra arguments go to `lilt serve` (e.g. --config FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --release
exec cargo run --release -p lilt -- serve "$@"
