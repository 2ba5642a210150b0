#!/usr/bin/env bash
# Installs wrk (the HTTP load generator `deno task bench` drives) from
# Debian's packages when it is missing, and prints its path.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
  command -v wrk
  exit 0
fi
SUDO=""
[[ "$(id -u)" == "0" ]] || SUDO="sudo"
echo "bench-wrk.sh: installing wrk with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends wrk >&2
command -v wrk
