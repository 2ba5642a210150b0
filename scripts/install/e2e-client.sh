#!/usr/bin/env bash
# Installs the LiveKit client of tests/e2e/ (tests/e2e/client: @livekit/rtc-node,
# whose npm package carries libwebrtc for linux-x64) with `npm ci` from its
# package-lock.json, and prints the client's folder. A second run reuses
# node_modules when the lock file has not changed (milliseconds).
#
# Usage: scripts/install/e2e-client.sh   # from the work tree's root
set -euo pipefail
CLIENT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../tests/e2e/client" && pwd)"
STAMP="$CLIENT_DIR/node_modules/.lock-installed"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "e2e-client.sh: node and npm are needed for the LiveKit client" >&2
  exit 1
fi
if [[ -f "$STAMP" ]] && cmp -s "$STAMP" "$CLIENT_DIR/package-lock.json" &&
  [[ -f "$CLIENT_DIR/node_modules/@livekit/rtc-node/package.json" ]]; then
  echo "$CLIENT_DIR"
  exit 0
fi
echo "e2e-client.sh: npm ci in $CLIENT_DIR" >&2
(cd "$CLIENT_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
cp "$CLIENT_DIR/package-lock.json" "$STAMP"
echo "$CLIENT_DIR"
