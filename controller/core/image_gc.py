"""Which workspace images a Docker host no longer needs: a pure decision, per pass of the image GC.

An image is the controller's to judge only when every repository it is known under (its tags and its
digests) is under the registry prefix the workspace images come from; anything else on the host is
someone else's. Of those, one no container uses (in any state, made by anyone) and none is pulling is
removed once it has been seen unused for the delay, counted from the first pass that saw it so (a
restarted controller starts counting again). An image in use, or pulled again, starts from zero.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from controller.core.image_refs import split_reference
from controller.port.values import ObservedImage


@dataclass(frozen=True)
class GcPass:
    remove: tuple[ObservedImage, ...]
    unused_since: dict[str, float] = field(default_factory=dict)
    """Image ID -> when it was first seen unused (the caller's clock), for the images still waiting."""
    kept: dict[str, int] = field(default_factory=dict)
    """How many images were kept, by reason: in-use, pulling, waiting, not-ours."""


def repositories(image: ObservedImage) -> set[str]:
    return {split_reference(ref)[0] for ref in (*image.repo_tags, *image.repo_digests)}


def is_ours(image: ObservedImage, prefix: str) -> bool:
    """Known only under the workspace images' registry prefix (an image with no name at all is not)."""
    return _under(repositories(image), prefix)


def _under(repos: set[str], prefix: str) -> bool:
    return bool(repos) and all(repo.startswith(prefix.rstrip("/") + "/") for repo in repos)


def collect(
    images: Iterable[ObservedImage],
    in_use: Collection[str],
    pulling: Iterable[str],
    *,
    prefix: str,
    unused_since: Mapping[str, float],
    now: float,
    delay: float,
) -> GcPass:
    pulled = {split_reference(ref)[0] for ref in pulling}
    remove: list[ObservedImage] = []
    since: dict[str, float] = {}
    kept: dict[str, int] = {}

    def keep(reason: str) -> None:
        kept[reason] = kept.get(reason, 0) + 1

    for image in images:
        repos = repositories(image)
        if not _under(repos, prefix):
            keep("not-ours")
        elif image.id in in_use:
            keep("in-use")
        elif repos & pulled:
            keep("pulling")
        else:
            first = unused_since.get(image.id, now)
            if now - first >= delay:
                remove.append(image)
            else:
                since[image.id] = first
                keep("waiting")
    return GcPass(tuple(remove), since, kept)
