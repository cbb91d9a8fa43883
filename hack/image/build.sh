#!/usr/bin/env bash
# Build the controller image: hack/image/build.sh [tag]   (default workspace-controller:dev; `make image`)
# The wheels (the controller's and every dependency's, for CPython 3.11 on manylinux x86_64: the
# Python of the Debian bookworm base) are fetched here, with this machine's pip settings, and the image
# is built from them with no network access at all. Bases: hack/image/bases.sh.
set -euo pipefail
log() { printf '[image] %s\n' "$*" >&2; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
tag=${1:-workspace-controller:dev}
python=${PYTHON:-$repo/.venv/bin/python}

bash "$repo/hack/image/bases.sh"
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$repo/Dockerfile" "$context/"
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$context/wheels" "$repo"
requirements=$("$python" - "$repo/pyproject.toml" <<'PY'
import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))
PY
)
printf '%s\n' "$requirements" >"$context/requirements.txt"
"$python" -m pip download --quiet --dest "$context/wheels" --only-binary=:all: \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
  --requirement "$context/requirements.txt"
log "building $tag"
docker build --quiet --network none --tag "$tag" "$context" >/dev/null
log "built $tag ($(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MiB", $1/1048576}'))"
