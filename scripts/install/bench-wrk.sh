#!/usr/bin/env bash
# Installs wrk, the HTTP load generator deno task bench drives,
# from Debian's packages when it is missing, and prints its path.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/apt.sh" wrk
