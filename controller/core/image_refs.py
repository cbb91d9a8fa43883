"""Image references, parsed once: `[registry[:port]/]path[:tag][@digest]`.

Docker shortens Docker Hub names in what it reports (`docker.io/library/busybox` is listed as `busybox`),
and Docker Hub answers to several host names; both facts live here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "DOCKER_HUB",
    "ImageRef",
    "digest_for",
    "image_tag",
    "normalise_registry",
    "normalize_repository",
    "parse_image_ref",
    "registry_host",
    "split_reference",
]

DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_OFFICIAL_PREFIX = "library/"


@dataclass(frozen=True)
class ImageRef:
    repository: str
    """As written, without tag or digest (`localhost:5000/x`, `busybox`)."""
    tag: str
    """"" when the reference has none."""
    digest: str
    """`sha256:...`, "" when the reference has none."""
    registry: str
    """The registry host it is pulled from, normalised (`docker.io` when the first component is no host)."""


def parse_image_ref(ref: str) -> ImageRef:
    """A colon that belongs to a registry's port is not a tag separator (`localhost:5000/x` has no tag)."""
    name, _, digest = ref.partition("@")
    last_colon = name.rfind(":")
    if last_colon > name.rfind("/"):
        repository, tag = name[:last_colon], name[last_colon + 1 :]
    else:
        repository, tag = name, ""
    first, slash, _ = repository.partition("/")
    is_host = bool(slash) and ("." in first or ":" in first or first == "localhost")
    registry = normalise_registry(first) if is_host else DOCKER_HUB
    return ImageRef(repository=repository, tag=tag, digest=digest, registry=registry)


def split_reference(ref: str) -> tuple[str, str]:
    """`repo[:tag][@digest]` -> (repository, tag or digest) as the pull API wants them.

    The tag defaults to `latest`; a digest wins over a tag (`repo:tag@sha256:...`).
    """
    parsed = parse_image_ref(ref)
    return parsed.repository, parsed.digest or parsed.tag or "latest"


def image_tag(ref: str) -> str:
    """The tag of an image reference, "" when it has none."""
    return parse_image_ref(ref).tag


def registry_host(ref: str) -> str:
    """The registry an image reference is pulled from; Docker Hub when the first component is not a host."""
    return parse_image_ref(ref).registry


def normalise_registry(key: str) -> str:
    """A registry as a host: `https://index.docker.io/v1/` -> `docker.io`; `https://reg:5000/p` -> `reg:5000`.

    Also how `.dockerconfigjson` keys are read, so credentials match whatever spelling a Secret uses.
    """
    host = key.strip()
    for scheme in ("https://", "http://"):
        if host.lower().startswith(scheme):
            host = host[len(scheme) :]
    host = host.split("/", 1)[0].lower()
    return DOCKER_HUB if host in _DOCKER_HUB_ALIASES else host


def normalize_repository(repository: str) -> str:
    """The short form Docker reports for a repository (Docker Hub's host and `library/` dropped)."""
    first, slash, rest = repository.partition("/")
    if not slash or first not in _DOCKER_HUB_ALIASES:
        return repository
    return rest.removeprefix(_OFFICIAL_PREFIX)


def digest_for(ref: str, repo_digests: Iterable[object]) -> str | None:
    """The `sha256:...` digest among an image's RepoDigests that belongs to `ref`'s repository."""
    wanted = normalize_repository(parse_image_ref(ref).repository)
    for entry in repo_digests:
        if not isinstance(entry, str) or "@" not in entry:
            continue
        repository, _, digest = entry.partition("@")
        if normalize_repository(repository) == wanted and digest:
            return digest
    return None
