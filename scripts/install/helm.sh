#!/usr/bin/env bash
# Installs a pinned Helm 3 into the project cache and prints its path.
#
# Helm is built from source with `go install` through the Go module proxy,
# because the machines that run this project reach package registries only
# (no release downloads). The binary is reused when it is already there and
# reports the pinned version.
#
# Usage: scripts/install/helm.sh        # prints e.g. /work/main/.cache/bin/helm
# Env:   LK_CACHE_DIR  cache directory (default: $PWD/.cache)
#        HELM_VERSION  override the pinned version (default below)
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.21.4}"
# Kubernetes version helm assumes when no cluster is reachable (helm template,
# helm lint). Helm's Makefile derives it from the k8s.io/client-go it builds
# with (v0.36.x for helm v3.21.x); a plain `go install` would leave v1.20.
HELM_K8S_MINOR="${HELM_K8S_MINOR:-36}"
CACHE_DIR="${LK_CACHE_DIR:-$PWD/.cache}"
BIN_DIR="$CACHE_DIR/bin"
HELM="$BIN_DIR/helm"
# Records how the binary was built, so a change of pin rebuilds it.
STAMP="$BIN_DIR/.helm-build"
WANT="helm $HELM_VERSION k8s 1.$HELM_K8S_MINOR"

if [[ -x "$HELM" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" &&
  "$("$HELM" version --template '{{.Version}}' 2>/dev/null)" == "$HELM_VERSION" ]]; then
  echo "$HELM"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "helm.sh: the Go toolchain (go) is needed to build helm $HELM_VERSION" >&2
  exit 1
fi

mkdir -p "$BIN_DIR"
BIN_DIR="$(cd "$BIN_DIR" && pwd)"
HELM="$BIN_DIR/helm"
STAMP="$BIN_DIR/.helm-build"
echo "helm.sh: building helm $HELM_VERSION into $BIN_DIR (takes a few minutes)" >&2
# The ldflags stamp what helm's own Makefile stamps: the version (so that
# `helm version` reports the pinned one) and the default Kubernetes version.
LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in pkg/lint/rules pkg/chartutil; do
  LDFLAGS+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$HELM_K8S_MINOR"
done
GOBIN="$BIN_DIR" CGO_ENABLED=0 go install -trimpath -ldflags "$LDFLAGS" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
"$HELM" version --short >&2
echo "$WANT" >"$STAMP"
echo "$HELM"
