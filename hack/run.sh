#!/usr/bin/env bash
# `make run`: the controller doing its main job on a fresh machine.
# Brings up what is missing: Docker (hack/stack/docker.sh); a local control plane unless KUBECONFIG
# points at a cluster that answers; a local registry with the test agent image unless
# MOLECULE_IMAGE_REGISTRY is set. Installs the CRDs, applies deploy/samples/, and runs the controller
# in the foreground. `hack/run.sh down` stops the control plane and registry it started.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
state=${WC_STATE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/workspace-controller/state}
log() { printf '\033[1m[run]\033[0m %s\n' "$*" >&2; }

if [ "${1:-}" = down ]; then
  bash "$repo/hack/stack/controlplane.sh" stop "$state/run-controlplane"
  WC_STATE_DIR=$state bash "$repo/hack/stack/registry.sh" stop run-registry
  log "stopped the local control plane and registry"
  exit 0
fi

bash "$repo/hack/stack/docker.sh" start

kubectl=${WC_KUBECTL:-$("$repo/hack/build-controlplane.sh" | tail -n 1)/kubectl}
if [ -n "${KUBECONFIG:-}" ] && "$kubectl" version --request-timeout=5s >/dev/null 2>&1; then
  log "using the cluster in KUBECONFIG=$KUBECONFIG"
else
  WC_APISERVER_PORT=${WC_APISERVER_PORT:-6443} \
    bash "$repo/hack/stack/controlplane.sh" start "$state/run-controlplane"
  # shellcheck disable=SC1091
  . "$state/run-controlplane/env"
  kubectl=$WC_KUBECTL
fi
k() { "$kubectl" "$@"; }

if [ -z "${MOLECULE_IMAGE_REGISTRY:-}" ]; then
  port=${WC_REGISTRY_PORT:-5000}
  address=$(WC_STATE_DIR=$state bash "$repo/hack/stack/registry.sh" start run-registry "$port" | tail -n 1)
  bash "$repo/hack/test-image/build.sh" "$address" molecule-ai latest
  export MOLECULE_IMAGE_REGISTRY="$address/molecule-ai"
  log "images come from the local registry $MOLECULE_IMAGE_REGISTRY (set MOLECULE_IMAGE_REGISTRY to use another)"
fi

# Isolated Workspaces (spec.network) run a gateway from the controller's own image: built here, in the
# background, when this Docker lacks it (a Workspace needing it meanwhile retries until it is there).
if [ -z "${WC_GATEWAY_IMAGE:-}" ] && ! docker image inspect workspace-controller:dev >/dev/null 2>&1; then
  log "building workspace-controller:dev in the background, for isolated Workspaces' gateways ($state/image.log)"
  (PYTHON=$py bash "$repo/hack/image/build.sh" workspace-controller:dev >"$state/image.log" 2>&1 &)
fi

k apply -f "$repo/crds" >/dev/null
k wait --for=condition=Established --timeout=60s \
  crd/workspaces.molecule.ai crd/workspacepolicies.molecule.ai crd/effectiveworkspacepolicies.molecule.ai \
  crd/dockerhosts.molecule.ai crd/workspacetemplates.molecule.ai crd/workspacepools.molecule.ai >/dev/null
# Established is not yet served: the apiserver answers 429 until each new resource's storage is ready.
for _ in $(seq 1 60); do
  k get workspaces,workspacepolicies,effectiveworkspacepolicies,dockerhosts,workspacetemplates,workspacepools -A >/dev/null 2>&1 && break
  sleep 0.5
done
# An admission policy installed earlier refuses Workspaces until the apiserver finds its (re-applied)
# parameter kind again, for up to half a minute: try again meanwhile.
for attempt in $(seq 1 60); do
  if k apply -f "$repo/deploy/samples/workspace.yaml"; then
    break
  fi
  [ "$attempt" = 60 ] && exit 1
  sleep 1
done

cat >&2 <<MSG

  The controller runs below (Ctrl-C stops it). In another shell:
    export KUBECONFIG=$KUBECONFIG
    $kubectl get workspaces -w
    $kubectl wait --for=condition=Ready ws/sample --timeout=120s
    $kubectl describe ws sample
    $kubectl get ws -o wide       # the Host column: the implicit DockerHost 'local' is this Docker
    docker ps --filter label=molecule.platform.managed=true
    curl -s \$($kubectl get ws sample -o jsonpath='{.status.endpoint}')/health
  Metrics: http://127.0.0.1:${WC_METRICS_PORT:-8080}/metrics

MSG
exec "$py" -m controller
