#!/usr/bin/env bash
# Installs a pinned Synapse (PyPI's matrix-synapse) into a virtualenv under the
# cache dir and prints the path of its Python, for tests/e2e/.
#
# The version is pinned for MSC4140 (delayed events): `max_event_delay_duration`
# and the unauthenticated `.../delayed_events/<id>/restart` and `/send`
# endpoints the service calls. A second run reuses the virtualenv (seconds).
#
# Usage: scripts/install/e2e-synapse.sh   # prints e.g. /work/main/.cache/e2e/synapse/bin/python
# Env:   LK_CACHE_DIR     cache directory (default: $PWD/.cache)
#        SYNAPSE_VERSION  override the pinned version (default below)
set -euo pipefail
SYNAPSE_VERSION="${SYNAPSE_VERSION:-1.163.2}"
CACHE_DIR="${LK_CACHE_DIR:-$PWD/.cache}"
mkdir -p "$CACHE_DIR/e2e"
VENV="$(cd "$CACHE_DIR/e2e" && pwd)/synapse"
PY="$VENV/bin/python"
STAMP="$VENV/.synapse-version"
if [[ -x "$PY" && -f "$STAMP" && "$(cat "$STAMP")" == "$SYNAPSE_VERSION" ]] &&
  "$PY" -c 'import synapse' 2>/dev/null; then
  echo "$PY"
  exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "e2e-synapse.sh: python3 is needed to install Synapse $SYNAPSE_VERSION" >&2
  exit 1
fi
echo "e2e-synapse.sh: installing matrix-synapse $SYNAPSE_VERSION into $VENV" >&2
rm -rf "$VENV"
python3 -m venv "$VENV" >&2
"$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
"$PY" -m pip install --quiet --disable-pip-version-check \
  "matrix-synapse==$SYNAPSE_VERSION" >&2
"$PY" -c 'import synapse; print("synapse", synapse.__version__)' >&2
echo "$SYNAPSE_VERSION" >"$STAMP"
echo "$PY"
