#!/usr/bin/env bash
# Installs redis-server from Debian's packages when it is missing and prints its path.
# The tests start their own server on a free port; the packaged service is not used.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  command -v redis-server
  exit 0
fi
SUDO=""
[[ "$(id -u)" == "0" ]] || SUDO="sudo"
echo "redis.sh: installing redis-server with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends redis-server >&2
command -v redis-server
