#!/usr/bin/env bash
# Installs Caddy, for tests/deploy/caddy_test.ts (caddy validate, and Caddy in front of the service),
# from Debian's packages when it is missing, and prints its path.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/apt.sh" caddy
