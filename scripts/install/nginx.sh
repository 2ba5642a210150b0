#!/usr/bin/env bash
# Installs nginx from Debian's packages when it is missing and prints its path.
#
# Used by tests/deploy/nginx_test.ts to check deploy/nginx/lk-jwt-service.conf
# with `nginx -t`. Needs root (or sudo) for apt-get.
#
# Usage: scripts/install/nginx.sh   # prints e.g. /usr/sbin/nginx
set -euo pipefail

find_nginx() {
  command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; }
}

if NGINX="$(find_nginx)"; then
  echo "$NGINX"
  exit 0
fi

SUDO=""
if [[ "$(id -u)" != "0" ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "nginx.sh: nginx is missing and installing it needs root (apt-get install nginx)" >&2
    exit 1
  fi
  SUDO="sudo"
fi

echo "nginx.sh: installing nginx with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends nginx >&2
find_nginx
