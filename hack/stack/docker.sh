#!/usr/bin/env bash
# Ensures a Docker Engine answers. Uses the daemon the environment already has (DOCKER_HOST or the
# default socket); only when none answers and we run as root does it install Debian's docker.io and
# start dockerd in the background. `docker.sh stop` stops a daemon this script started (by PID).
set -euo pipefail
state=${WC_STATE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/workspace-controller/state}/docker
mkdir -p "$state"
log() { printf '[docker] %s\n' "$*" >&2; }

answers() { timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start() {
  if answers; then
    log "engine answers ($(docker version --format 'server {{.Server.Version}}, API {{.Server.APIVersion}}'))"
    return
  fi
  if [ -n "${DOCKER_HOST:-}" ]; then
    log "DOCKER_HOST=$DOCKER_HOST does not answer; not starting a local engine in its place"
    exit 1
  fi
  if [ "$(id -u)" != 0 ]; then
    log "no engine answers and not root: start Docker yourself or set DOCKER_HOST"
    exit 1
  fi
  if ! command -v dockerd >/dev/null; then
    log "installing Debian's docker.io ..."
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null
  fi
  log "starting dockerd (logs: $state/dockerd.log)"
  # --iptables=false: the sandboxes this runs in cannot program iptables; published loopback
  # ports still work through docker-proxy.
  setsid dockerd --iptables=false --host=unix:///var/run/docker.sock \
    --pidfile="$state/dockerd.pid" >"$state/dockerd.log" 2>&1 < /dev/null &
  for _ in $(seq 1 120); do
    answers && { log "engine up ($(docker version --format 'server {{.Server.Version}}, API {{.Server.APIVersion}}'))"; return; }
    sleep 0.5
  done
  log "dockerd did not answer within 60s; last log lines:"; tail -20 "$state/dockerd.log" >&2
  exit 1
}

stop() {
  local pid
  pid=$(cat "$state/dockerd.pid" 2>/dev/null || true)
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && log "stopped dockerd ($pid)" || log "no dockerd started by this script"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac
