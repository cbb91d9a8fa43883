#!/usr/bin/env bash
# The two base images the controller's Dockerfile builds FROM, made from Debian's own packages with
# mmdebstrap (no image registry needed) and imported into the local Docker Engine:
#   workspace-controller/base-build:bookworm  python3, venv and pip: where the wheel is installed
#   workspace-controller/base-run:bookworm    python3 and CA certificates only: what ships
# Both are cached as tarballs under $WC_CACHE_DIR (default ~/.cache/workspace-controller/image-bases)
# and made again only when missing. Needs root (or fakeroot) and mmdebstrap (`.ci/run` installs it).
set -euo pipefail
log() { printf '[image-bases] %s\n' "$*" >&2; }

SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${WC_CACHE_DIR:-$HOME/.cache/workspace-controller}/image-bases
EXCLUDES=(--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*')

base() {
  local name=$1 packages=$2 tag="workspace-controller/base-$1:$SUITE" tarball="$CACHE/$1-$SUITE.tar"
  if docker image inspect "$tag" >/dev/null 2>&1; then
    return
  fi
  mkdir -p "$CACHE"
  if [ ! -s "$tarball" ]; then
    log "building $tag from $MIRROR ($packages)"
    mmdebstrap --quiet --format=tar --variant=essential --include="$packages" "${EXCLUDES[@]}" \
      "$SUITE" "$tarball.partial" "$MIRROR"
    mv "$tarball.partial" "$tarball"
  fi
  docker import --change 'CMD ["/bin/sh"]' "$tarball" "$tag" >/dev/null
  log "imported $tag"
}

base build python3,python3-venv,python3-pip,ca-certificates
base run python3-minimal,libpython3.11-stdlib,ca-certificates
