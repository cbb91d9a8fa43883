#!/usr/bin/env bash
# A Docker daemon of its own beside the machine's: its own socket, data root, exec root, pidfile and
# default bridge. For tests that stop and start a daemon (or run several) without disturbing the one
# everything else uses. Needs root, iproute2 and dockerd (docker.sh installs it).
#   dockerd.sh start <dir> [bridge-cidr] [dockerd flags...]
#                                         start it (socket <dir>/docker.sock); default bridge on
#                                         bridge-cidr (default 10.222.255.1/24); further flags go to
#                                         dockerd (e.g. a TLS-verified -H tcp://127.0.0.1:PORT)
#   dockerd.sh stop <dir>                 SIGTERM, wait for it to exit (it stops its containers first)
#   dockerd.sh remove <dir>               remove its containers and networks, stop it, delete its bridge
#
# Two flags are left out on purpose: a dockerd started with --bridge=none, or restarted with
# --default-address-pool, deletes the interface named docker0, the machine's daemon's default bridge.
# Its user networks come from Docker's predefined pools, which skip subnets the host already routes.
set -euo pipefail
log() { printf '[dockerd] %s\n' "$*" >&2; }

client() { local dir=$1; shift; timeout 60 docker --host "unix://$dir/docker.sock" "$@"; }
answers() { client "$1" version >/dev/null 2>&1; }
bridge_of() { printf 'wcd%s' "$(printf '%s' "$1" | md5sum | cut -c1-8)"; }

start() {
  local dir=$1 cidr=${2:-10.222.255.1/24} bridge
  shift 2 || shift $#
  mkdir -p "$dir"
  if answers "$dir"; then
    log "already answering at unix://$dir/docker.sock"
    return
  fi
  bridge=$(bridge_of "$dir")
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add name "$bridge" type bridge
    ip addr add "$cidr" dev "$bridge"
    ip link set "$bridge" up
  fi
  setsid dockerd --iptables=false --bridge="$bridge" --host="unix://$dir/docker.sock" \
    --data-root="$dir/data" --exec-root="$dir/exec" --pidfile="$dir/docker.pid" "$@" \
    >>"$dir/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    answers "$dir" && { log "up at unix://$dir/docker.sock"; return; }
    sleep 0.5
  done
  log "dockerd did not answer within 60s; last log lines:"; tail -20 "$dir/dockerd.log" >&2
  exit 1
}

stop() {
  local dir=$1 pid
  pid=$(cat "$dir/docker.pid" 2>/dev/null || true)
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    log "not running"
    return
  fi
  kill "$pid"
  for _ in $(seq 1 120); do
    kill -0 "$pid" 2>/dev/null || { log "stopped ($pid)"; return; }
    sleep 0.5
  done
  log "still running after 60s; SIGKILL"
  kill -9 "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
}

# Its user networks' bridges outlive the daemon: remove them (and so its containers) while it runs.
remove() {
  local dir=$1 ids
  if answers "$dir"; then
    ids=$(client "$dir" ps -aq)
    [ -z "$ids" ] || client "$dir" rm -f $ids >/dev/null || true
    client "$dir" network prune -f >/dev/null || true
  fi
  stop "$dir"
  ip link del "$(bridge_of "$dir")" 2>/dev/null || true
}

case "${1:-}" in
  start) shift; start "${1:?dir}" "${2:-}" "${@:3}" ;;
  stop) stop "${2:?dir}" ;;
  remove) remove "${2:?dir}" ;;
  *) echo "usage: $0 start <dir> [bridge-cidr] [dockerd flags...] | stop <dir> | remove <dir>" >&2; exit 2 ;;
esac
