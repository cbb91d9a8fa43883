#!/usr/bin/env bash
# Starts Debian's docker-registry (distribution) on a loopback port, optionally with htpasswd auth.
#   registry.sh start <name> <port> [user:password]   -> prints the address host:port
#   registry.sh stop <name>
# Docker allows plain HTTP to 127.0.0.1/localhost registries, so no TLS is needed.
set -euo pipefail
base=${WC_STATE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/workspace-controller/state}/registry
log() { printf '[registry] %s\n' "$*" >&2; }

start() {
  local name=$1 port=$2 creds=${3:-} dir auth=""
  dir="$base/$name"
  mkdir -p "$dir/data"
  if ! command -v docker-registry >/dev/null; then
    [ "$(id -u)" = 0 ] || { log "docker-registry is not installed and not root"; exit 1; }
    log "installing Debian's docker-registry ..."
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-registry apache2-utils >/dev/null
  fi
  if [ -n "$creds" ]; then
    command -v htpasswd >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q apache2-utils >/dev/null
    htpasswd -Bbn "${creds%%:*}" "${creds#*:}" > "$dir/htpasswd"
    auth="auth:
  htpasswd:
    realm: workspace-controller
    path: $dir/htpasswd"
  fi
  cat > "$dir/config.yml" <<CFG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
$auth
CFG
  stop "$name" 2>/dev/null || true
  setsid docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
  for _ in $(seq 1 100); do
    # /v2/ answers 200 (open) or 401 (auth) once the registry listens.
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" || true)
    if [ "$code" = 200 ] || [ "$code" = 401 ]; then
      log "$name up on 127.0.0.1:$port${creds:+ (htpasswd auth)}"
      echo "127.0.0.1:$port"
      return
    fi
    sleep 0.1
  done
  log "$name did not answer; log:"; cat "$dir/registry.log" >&2
  exit 1
}

stop() {
  local pidfile="$base/$1/pid" pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 start <name> <port> [user:password] | stop <name>" >&2; exit 2 ;;
esac
