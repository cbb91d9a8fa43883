#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd from the Go module proxy, once per version, and helm (for the
# tests of deploy/helm) the same way.
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
# As helm's own Makefile stamps a release: its version, and the Kubernetes version it assumes when no
# cluster is asked (helm template, helm lint): that of the client-go it is built with (v0.Y.Z is 1.Y).
helm_kube_minor=$(awk '$1=="k8s.io/client-go"{print $2}' "$here/helm/go.mod" | cut -d. -f2)
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} \
-X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in chartutil lint/rules; do
  helm_ldflags+=" -X helm.sh/helm/v3/pkg/$pkg.k8sVersionMajor=1"
  helm_ldflags+=" -X helm.sh/helm/v3/pkg/$pkg.k8sVersionMinor=$helm_kube_minor"
done

total_start=$(date +%s)
build "$here/kube" k8s.io/kubernetes/cmd/kube-apiserver "$bindir/kube-apiserver-$KUBE_VERSION" "$kube_ldflags"
build "$here/kube" k8s.io/kubernetes/cmd/kubectl "$bindir/kubectl-$KUBE_VERSION" "$kube_ldflags"
build "$here/etcd" go.etcd.io/etcd/server/v3 "$bindir/etcd-$ETCD_VERSION" "$etcd_ldflags"
build "$here/helm" helm.sh/helm/v3/cmd/helm "$bindir/helm-$HELM_VERSION" "$helm_ldflags"
# Stable names for scripts and users; the versioned files are the cache.
ln -sf "kube-apiserver-$KUBE_VERSION" "$bindir/kube-apiserver"
ln -sf "kubectl-$KUBE_VERSION" "$bindir/kubectl"
ln -sf "etcd-$ETCD_VERSION" "$bindir/etcd"
ln -sf "helm-$HELM_VERSION" "$bindir/helm"
log "control-plane binaries ready in $(( $(date +%s) - total_start ))s"
echo "$bindir"
