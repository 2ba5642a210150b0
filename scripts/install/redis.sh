#!/usr/bin/env bash
# Installs redis-server; the tests start their own server on a free port,
# from Debian's packages when it is missing, and prints its path.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/apt.sh" redis-server
