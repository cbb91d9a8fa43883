#!/usr/bin/env bash
# Builds the test agent image and pushes it as <registry>/<prefix>/workspace-template-<runtime>:<tag>
# for every runtime the seed knows.
#   build.sh <registry host:port> [prefix] [tag] [version]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
registry=$1 prefix=${2:-molecule-ai} tag=${3:-latest} version=${4:-v1}
runtimes="autogen claude-code codex crewai deepagents gemini-cli hermes langgraph openclaw"
log() { printf '[test-image] %s\n' "$*" >&2; }

# The image needs a statically linked busybox (FROM scratch has no libc): Debian's busybox-static.
if ! dpkg -s busybox-static >/dev/null 2>&1; then
  log "installing Debian's busybox-static ..."
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >/dev/null
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp -r "$here/www" "$here/agent.sh" "$here/Dockerfile" "$ctx/"
cp /bin/busybox "$ctx/busybox"
local_tag="workspace-controller/test-agent:$version"
DOCKER_BUILDKIT=0 docker build -q --build-arg "VERSION=$version" -t "$local_tag" "$ctx" >/dev/null 2>"$ctx/build.err" || { cat "$ctx/build.err" >&2; exit 1; }
log "built $local_tag"
for rt in $runtimes; do
  ref="$registry/$prefix/workspace-template-$rt:$tag"
  docker tag "$local_tag" "$ref"
  docker push -q "$ref" >/dev/null
done
log "pushed $registry/$prefix/workspace-template-{${runtimes// /,}}:$tag"
