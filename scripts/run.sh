#!/usr/bin/env bash
# Run Lilt locally with its embedded defaults: vhost localhost, anonymous auth, data in
# ./lilt-data, a generated self-signed certificate; c2s on 5222, direct TLS on 5223,
# components on 5347, HTTP (WebSocket /xmpp-websocket, BOSH /http-bind, /about/health,
# /metrics, the meeting page) on 5280 and HTTPS on 5281, and prints the meeting page's URL once
# it is up. Extra arguments go to `lilt serve` (e.g. --config FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Once the server answers, say where the meeting page is (docs/meeting-page.md). On the
# embedded defaults that is port 5280 (it moves to HTTPS on 5281, since vhost localhost wants
# encrypted logins; the certificate is self-signed, so the browser asks once).
if [ "$#" -eq 0 ]; then
    server=$$ # this shell's PID, which becomes the server's by `exec` below
    (
        for _ in $(seq 1 600); do
            kill -0 "$server" 2>/dev/null || exit 0
            if (exec 3<>/dev/tcp/127.0.0.1/5280) 2>/dev/null; then
                sleep 1
                echo
                echo "run.sh: Lilt is up. Open the meeting page in two browser tabs:"
                echo "run.sh:   http://localhost:5280/   (moves to https://localhost:5281/, self-signed certificate)"
                echo "run.sh:   https://localhost:5281/"
                exit 0
            fi
            sleep 1
        done
    ) &
fi
# The binary setup.sh built (not `cargo run -p lilt`, which resolves the dependencies' features
# without the tests' and would compile a second variant of the server).
exec target/release/lilt serve "$@"
