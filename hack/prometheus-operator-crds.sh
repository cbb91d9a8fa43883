#!/usr/bin/env bash
# Prints the directory holding the Prometheus Operator's published CRDs (ServiceMonitor, PrometheusRule,
# ...) of a pinned release, taken from the Go module proxy (the release's module carries them under
# example/prometheus-operator-crd) and cached in the Go module cache. The tests install them to check
# deploy/prometheus against the schemas the operator itself ships.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
version=$PROMETHEUS_OPERATOR_VERSION
dir=$(go mod download -json "github.com/prometheus-operator/prometheus-operator@${version}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
crds="$dir/example/prometheus-operator-crd"
test -f "$crds/monitoring.coreos.com_servicemonitors.yaml" || { echo "no CRDs in $crds" >&2; exit 1; }
echo "$crds"
