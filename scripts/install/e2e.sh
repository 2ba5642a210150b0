#!/usr/bin/env bash
# Installs everything tests/e2e/ (`deno task test:e2e`) runs, pinned:
#   - livekit-server v1.13.5, built with `go install`   -> $CACHE/e2e/bin/livekit-server
#   - matrix-synapse 1.163.2 from PyPI in a virtualenv  -> $CACHE/e2e/synapse
#   - @livekit/rtc-node 1.1.0 (npm ci)                  -> tests/e2e/client/node_modules
#   - redis-server from Debian (scripts/install/redis.sh)
# where CACHE is ${LK_CACHE_DIR:-$PWD/.cache}. The first run takes a few
# minutes (the SFU's build dominates); later runs reuse everything and take
# about a second.
#
# A component that cannot be installed is reported on stderr; the suite then
# prints SKIPPED. With CI set, it is an error instead (exit 1).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
failed=()
for script in redis.sh e2e-livekit.sh e2e-synapse.sh e2e-client.sh; do
  if ! "$here/$script" >/dev/null; then
    echo "e2e.sh: $script failed" >&2
    failed+=("$script")
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  ci="${CI:-}"
  if [[ -n "$ci" && "$ci" != "0" && "$ci" != "false" ]]; then
    echo "e2e.sh: could not install: ${failed[*]}" >&2
    exit 1
  fi
  echo "e2e.sh: could not install: ${failed[*]}; the end-to-end suite will be SKIPPED" >&2
fi
exit 0
