#!/usr/bin/env bash
# Installs the pinned Deno from the npm registry (package `deno`) into
# .tools/ when the deno on PATH is missing or another version, and prints the
# directory to put on PATH.
#
# Usage: export PATH="$(scripts/install/deno.sh):$PATH"
set -euo pipefail
DENO_VERSION=2.9.6
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tools="$root/.tools"

if command -v deno >/dev/null 2>&1 &&
  deno --version 2>/dev/null | head -n 1 | grep -q "^deno $DENO_VERSION "; then
  dirname "$(command -v deno)"
  exit 0
fi
if [[ -x "$tools/bin/deno" ]] &&
  "$tools/bin/deno" --version | head -n 1 | grep -q "^deno $DENO_VERSION "; then
  echo "$tools/bin"
  exit 0
fi

echo "deno.sh: installing deno $DENO_VERSION from npm into $tools" >&2
mkdir -p "$tools/bin"
# The platform package carries the binary; no install script has to run.
npm install --prefix "$tools" --no-save --no-audit --no-fund --ignore-scripts \
  "deno@$DENO_VERSION" >&2
case "$(uname -m)" in
  x86_64) platform=linux-x64-glibc ;;
  aarch64 | arm64) platform=linux-arm64-glibc ;;
  *) echo "deno.sh: no Deno package for $(uname -m)" >&2; exit 1 ;;
esac
ln -sf "$tools/node_modules/@deno/$platform/deno" "$tools/bin/deno"
"$tools/bin/deno" --version >&2
echo "$tools/bin"
