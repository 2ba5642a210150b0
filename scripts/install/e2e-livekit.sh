#!/usr/bin/env bash
# Installs a pinned LiveKit SFU (livekit-server) into the cache dir and prints
# its path, for tests/e2e/.
#
# Built from source with `go install` through the Go module proxy (these
# machines reach package registries only, no release downloads). The first
# build takes a minute or two; a second run reuses the binary (milliseconds).
#
# Usage: scripts/install/e2e-livekit.sh   # prints e.g. /work/main/.cache/e2e/bin/livekit-server
# Env:   LK_CACHE_DIR     cache directory (default: $PWD/.cache)
#        LIVEKIT_VERSION  override the pinned version (default below)
set -euo pipefail
LIVEKIT_VERSION="${LIVEKIT_VERSION:-v1.13.5}"
CACHE_DIR="${LK_CACHE_DIR:-$PWD/.cache}"
mkdir -p "$CACHE_DIR/e2e/bin"
BIN_DIR="$(cd "$CACHE_DIR/e2e/bin" && pwd)"
SERVER="$BIN_DIR/livekit-server"
if [[ -x "$SERVER" ]] &&
  [[ "$("$SERVER" --version 2>/dev/null)" == "livekit-server version ${LIVEKIT_VERSION#v}" ]]; then
  echo "$SERVER"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "e2e-livekit.sh: the Go toolchain (go) is needed to build livekit-server $LIVEKIT_VERSION" >&2
  exit 1
fi
echo "e2e-livekit.sh: building livekit-server $LIVEKIT_VERSION into $BIN_DIR (takes a few minutes)" >&2
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
GOBIN="$build" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" \
  "github.com/livekit/livekit-server/cmd/server@$LIVEKIT_VERSION" >&2
mv "$build/server" "$SERVER"
"$SERVER" --version >&2
echo "$SERVER"
