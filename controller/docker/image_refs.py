"""Image references: splitting them for a pull and finding the digest Docker resolved for one.

Docker shortens Docker Hub names in what it reports (`docker.io/library/busybox` is listed as
`busybox`), so repositories are compared in that short form.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["digest_for", "normalize_repository", "split_reference"]

_HUB_PREFIXES = ("docker.io/", "index.docker.io/", "registry-1.docker.io/")


def split_reference(ref: str) -> tuple[str, str]:
    """`repo[:tag][@digest]` -> (repository, tag or digest) as the pull API wants them.

    The tag defaults to `latest`. A colon that belongs to a registry's port is not a tag separator
    (`localhost:5000/x` has no tag). A digest wins over a tag (`repo:tag@sha256:...`).
    """
    name, _, digest = ref.partition("@")
    if digest:
        return _strip_tag(name), digest
    repository = _strip_tag(name)
    tag = name[len(repository) + 1 :] if len(name) > len(repository) else ""
    return repository, tag or "latest"


def _strip_tag(name: str) -> str:
    last_colon = name.rfind(":")
    if last_colon > name.rfind("/"):
        return name[:last_colon]
    return name


def normalize_repository(repository: str) -> str:
    """The short form Docker reports for a repository (Docker Hub's host and `library/` dropped)."""
    for prefix in _HUB_PREFIXES:
        if repository.startswith(prefix):
            repository = repository[len(prefix) :]
            break
    else:
        return repository
    return repository.removeprefix("library/")


def digest_for(ref: str, repo_digests: Iterable[object]) -> str | None:
    """The `sha256:...` digest among an image's RepoDigests that belongs to `ref`'s repository."""
    wanted = normalize_repository(split_reference(ref)[0])
    for entry in repo_digests:
        if not isinstance(entry, str) or "@" not in entry:
            continue
        repository, _, digest = entry.partition("@")
        if normalize_repository(repository) == wanted and digest:
            return digest
    return None
