#!/usr/bin/env bash
# A local Kubernetes control plane: etcd + kube-apiserver on loopback, like controller-runtime's envtest.
#   controlplane.sh start <state-dir>   start (building the binaries first if they are not cached)
#   controlplane.sh stop <state-dir>    stop by PID (SIGTERM, then SIGKILL)
#   controlplane.sh restart <state-dir> apiserver|etcd   one of the two stopped and started again on the
#                                       same ports, certificates and etcd data (a restart, not a reset)
# Writes into <state-dir>: admin.kubeconfig (client cert in system:masters), controller.kubeconfig
# (a non-admin identity: the ServiceAccount workspace-controller/workspace-controller, which only gets
# what deploy/ grants it), the certificates, logs, and env (KUBECONFIG and the ports, for sourcing).
# Ports come from WC_ETCD_PORT / WC_APISERVER_PORT, or free ones are picked.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
log() { printf '[controlplane] %s\n' "$*" >&2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

certs() {
  local d=$1/pki
  [ -f "$d/ca.crt" ] && return
  mkdir -p "$d"
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=workspace-controller-local-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    sign() { # sign <name> <subject> [extfile-contents]
      openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
      printf '%s\n' "${3:-extendedKeyUsage=clientAuth}" > "$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    sign apiserver "/CN=kube-apiserver" \
      "$(printf 'subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,IP:127.0.0.1,IP:10.0.0.1\nextendedKeyUsage=serverAuth')"
    sign admin "/O=system:masters/CN=admin"
    sign controller "/O=system:serviceaccounts/O=system:serviceaccounts:workspace-controller/CN=system:serviceaccount:workspace-controller:workspace-controller"
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    chmod 600 ./*.key
  )
}

kubeconfig() { # kubeconfig <state> <user> <port>
  local s=$1 user=$2 port=$3
  cat > "$s/$user.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority: $s/pki/ca.crt
users:
- name: $user
  user:
    client-certificate: $s/pki/$user.crt
    client-key: $s/pki/$user.key
contexts:
- name: $user@local
  context: {cluster: local, user: $user}
current-context: $user@local
KC
}

stop_pid() { # stop_pid <pidfile>
  local pid
  [ -f "$1" ] || return 0
  pid=$(cat "$1")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

run_etcd() { # run_etcd <state> <bindir> <client port> <peer port>
  setsid "$2/etcd" --name local --data-dir "$1/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$3" --advertise-client-urls "http://127.0.0.1:$3" \
    --listen-peer-urls "http://127.0.0.1:$4" --initial-advertise-peer-urls "http://127.0.0.1:$4" \
    --initial-cluster "local=http://127.0.0.1:$4" --unsafe-no-fsync --log-level warn \
    >>"$1/etcd.log" 2>&1 < /dev/null &
  echo $! > "$1/etcd.pid"
}

run_apiserver() { # run_apiserver <state> <bindir> <etcd port> <apiserver port>
  setsid "$2/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$3" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$4" \
    --endpoint-reconciler-type none \
    --cert-dir "$1/pki" --tls-cert-file "$1/pki/apiserver.crt" --tls-private-key-file "$1/pki/apiserver.key" \
    --client-ca-file "$1/pki/ca.crt" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$1/pki/sa.pub" --service-account-signing-key-file "$1/pki/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --authorization-mode RBAC --allow-privileged=true \
    --disable-admission-plugins ServiceAccount \
    >>"$1/apiserver.log" 2>&1 < /dev/null &
  echo $! > "$1/apiserver.pid"
}

wait_ready() { # wait_ready <state> <apiserver port> <started at>
  local s=$1 api_port=$2 start_ts=$3
  for _ in $(seq 1 600); do
    if curl -sf --cacert "$s/pki/ca.crt" --cert "$s/pki/admin.crt" --key "$s/pki/admin.key" \
        "https://127.0.0.1:$api_port/readyz" >/dev/null 2>&1; then
      log "kube-apiserver ready on https://127.0.0.1:$api_port in $(python3 -c "import time; print(round(time.time()-$start_ts,1))")s"
      return 0
    fi
    for p in etcd apiserver; do
      if ! kill -0 "$(cat "$s/$p.pid")" 2>/dev/null; then
        log "$p exited; last log lines:"; tail -20 "$s/$p.log" >&2; exit 1
      fi
    done
    sleep 0.2
  done
  log "kube-apiserver not ready after 120s; last log lines:"; tail -20 "$s/apiserver.log" >&2
  exit 1
}

start() {
  local s=$1 bindir etcd_port etcd_peer api_port start_ts
  mkdir -p "$s"
  s=$(cd "$s" && pwd)
  bindir=$("$here/../build-controlplane.sh" | tail -n 1)
  stop "$s"
  start_ts=$(date +%s.%N)
  certs "$s"
  etcd_port=${WC_ETCD_PORT:-$(free_port)}
  etcd_peer=${WC_ETCD_PEER_PORT:-$(free_port)}
  api_port=${WC_APISERVER_PORT:-$(free_port)}
  : > "$s/etcd.log"
  : > "$s/apiserver.log"
  run_etcd "$s" "$bindir" "$etcd_port" "$etcd_peer"
  run_apiserver "$s" "$bindir" "$etcd_port" "$api_port"
  kubeconfig "$s" admin "$api_port"
  kubeconfig "$s" controller "$api_port"
  ln -sf "$bindir/kubectl" "$s/kubectl"
  cat > "$s/env" <<ENV
export KUBECONFIG=$s/admin.kubeconfig
export WC_KUBECTL=$bindir/kubectl
export WC_APISERVER_PORT=$api_port
export WC_ETCD_PORT=$etcd_port
export WC_ETCD_PEER_PORT=$etcd_peer
ENV
  wait_ready "$s" "$api_port" "$start_ts"
  log "etcd on 127.0.0.1:$etcd_port"
  log "export KUBECONFIG=$s/admin.kubeconfig"
}

restart() { # restart <state> apiserver|etcd: one process stopped and started again, everything else kept
  local s=$1 which=$2 bindir start_ts
  s=$(cd "$s" && pwd)
  # shellcheck disable=SC1091
  . "$s/env"
  bindir=$(dirname "$WC_KUBECTL")
  start_ts=$(date +%s.%N)
  stop_pid "$s/$which.pid"
  case "$which" in
    apiserver) run_apiserver "$s" "$bindir" "$WC_ETCD_PORT" "$WC_APISERVER_PORT" ;;
    etcd) run_etcd "$s" "$bindir" "$WC_ETCD_PORT" "$WC_ETCD_PEER_PORT" ;;
    *) echo "restart: apiserver or etcd" >&2; exit 2 ;;
  esac
  wait_ready "$s" "$WC_APISERVER_PORT" "$start_ts"
}

stop() {
  local s=$1
  stop_pid "$s/apiserver.pid"
  stop_pid "$s/etcd.pid"
}

case "${1:-}" in
  start) start "${2:?state dir}" ;;
  stop) stop "${2:?state dir}" ;;
  restart) restart "${2:?state dir}" "${3:?apiserver or etcd}" ;;
  *) echo "usage: $0 start|stop <state-dir> | restart <state-dir> apiserver|etcd" >&2; exit 2 ;;
esac
