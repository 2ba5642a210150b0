#!/usr/bin/env bash
# Installs a pinned Kubernetes schema validator into the project cache and
# prints the path of its command.
#
# The PyPI package kubernetes-validate ships the JSON schemas of every
# Kubernetes release inside the package, so validation needs no download at
# test time. It goes into a virtualenv under the cache dir, reused when it
# already holds the pinned version.
#
# Usage: scripts/install/kube-schemas.sh   # prints e.g. .cache/kube-validate/bin/kubernetes-validate
# Env:   LK_CACHE_DIR  cache directory (default: $PWD/.cache)
set -euo pipefail

KUBERNETES_VALIDATE_VERSION="1.37.0"
CACHE_DIR="${LK_CACHE_DIR:-$PWD/.cache}"
VENV="$CACHE_DIR/kube-validate"
mkdir -p "$CACHE_DIR"
VENV="$(cd "$CACHE_DIR" && pwd)/kube-validate"
CMD="$VENV/bin/kubernetes-validate"

if [[ -x "$CMD" && "$("$CMD" --version 2>/dev/null)" == "$KUBERNETES_VALIDATE_VERSION" ]]; then
  echo "$CMD"
  exit 0
fi

PYTHON="$(command -v python3 || true)"
if [[ -z "$PYTHON" ]]; then
  echo "kube-schemas.sh: python3 is needed to install kubernetes-validate" >&2
  exit 1
fi

echo "kube-schemas.sh: installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $VENV" >&2
"$PYTHON" -m venv "$VENV" >&2
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" >&2
echo "$CMD"
