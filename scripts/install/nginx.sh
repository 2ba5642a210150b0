#!/usr/bin/env bash
# Installs nginx, for tests/deploy/nginx_test.ts (nginx -t, and nginx in front of an upstream),
# from Debian's packages when it is missing, and prints its path.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/apt.sh" nginx
