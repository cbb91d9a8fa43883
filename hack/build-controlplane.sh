#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd from the Go module proxy, once per version.
# Binaries are cached outside the repo under $WC_CACHE_DIR (default ~/.cache/workspace-controller)
# and rebuilt only when missing. Prints the directory holding the binaries on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

cache=${WC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/workspace-controller}
bindir="$cache/bin"
mkdir -p "$bindir"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

log() { printf '[controlplane] %s\n' "$*" >&2; }

build() { # build <module dir> <package> <output> <ldflags>
  local dir=$1 pkg=$2 out=$3 ldflags=$4 start
  if [ -x "$out" ]; then
    log "cached: $(basename "$out")"
    return
  fi
  log "building $(basename "$out") from $pkg (cold builds take minutes on 2 cores) ..."
  start=$(date +%s)
  (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg")
  mv "$out.tmp" "$out"
  log "built $(basename "$out") in $(( $(date +%s) - start ))s"
}

kube_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${KUBE_VERSION} \
-X k8s.io/component-base/version.gitMajor=1 \
-X k8s.io/component-base/version.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2) \
-X k8s.io/component-base/version.gitTreeState=clean \
-X k8s.io/client-go/pkg/version.gitVersion=${KUBE_VERSION}"
etcd_ldflags="-s -w"

total_start=$(date +%s)
build "$here/kube" k8s.io/kubernetes/cmd/kube-apiserver "$bindir/kube-apiserver-$KUBE_VERSION" "$kube_ldflags"
build "$here/kube" k8s.io/kubernetes/cmd/kubectl "$bindir/kubectl-$KUBE_VERSION" "$kube_ldflags"
build "$here/etcd" go.etcd.io/etcd/server/v3 "$bindir/etcd-$ETCD_VERSION" "$etcd_ldflags"
# Stable names for scripts and users; the versioned files are the cache.
ln -sf "kube-apiserver-$KUBE_VERSION" "$bindir/kube-apiserver"
ln -sf "kubectl-$KUBE_VERSION" "$bindir/kubectl"
ln -sf "etcd-$ETCD_VERSION" "$bindir/etcd"
log "control-plane binaries ready in $(( $(date +%s) - total_start ))s"
echo "$bindir"
