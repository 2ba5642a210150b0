#!/usr/bin/env bash
# Installs Caddy from Debian's packages when it is missing and prints its path.
#
# Used by tests/deploy/caddy_test.ts to validate deploy/Caddyfile and to run
# it in front of a local upstream. Needs root (or sudo) for apt-get.
#
# Usage: scripts/install/caddy.sh   # prints e.g. /usr/bin/caddy
set -euo pipefail

if command -v caddy >/dev/null 2>&1; then
  command -v caddy
  exit 0
fi

SUDO=""
if [[ "$(id -u)" != "0" ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "caddy.sh: caddy is missing and installing it needs root (apt-get install caddy)" >&2
    exit 1
  fi
  SUDO="sudo"
fi

echo "caddy.sh: installing caddy with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
# --no-install-recommends keeps the install small; policy-rc.d style
# environments (containers) simply do not start the packaged service.
$SUDO apt-get install -y -qq --no-install-recommends caddy >&2
command -v caddy
