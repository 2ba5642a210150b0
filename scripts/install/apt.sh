#!/usr/bin/env bash
# Installs a Debian package when its program is missing, and prints the
# program's path. The other install scripts call it.
#
# Usage: scripts/install/apt.sh PACKAGE [PROGRAM]   # PROGRAM defaults to PACKAGE
set -euo pipefail
package="$1"
program="${2:-$1}"

find_program() {
  command -v "$program" 2>/dev/null ||
    { [[ -x "/usr/sbin/$program" ]] && echo "/usr/sbin/$program"; }
}

if find_program; then exit 0; fi

SUDO=""
if [[ "$(id -u)" != "0" ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "apt.sh: $program is missing and installing it needs root (apt-get install $package)" >&2
    exit 1
  fi
  SUDO="sudo"
fi
echo "apt.sh: installing $package with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
# Without recommends; in containers the packaged services are not started.
$SUDO apt-get install -y -qq --no-install-recommends "$package" >&2
find_program
