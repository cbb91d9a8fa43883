"""status.container.imageDigest for every Workspace on a host from one inspect per image.

An image ID names content, so the digest it has in a repository is the same for every container made
from it: the first Workspace to ask inspects the image, those asking meanwhile wait for that answer, and
later ones read it. (By the ID, not the tag: the tag may name a newer image by now.)
"""

from __future__ import annotations

import asyncio

from controller.core.image_refs import digest_for, split_reference
from controller.port.runtime import ContainerRuntime

_KEPT = 1024


class ImageDigests:
    def __init__(self) -> None:
        self._known: dict[tuple[str, str, str], str] = {}
        self._asking: dict[tuple[str, str, str], asyncio.Future[str | None]] = {}

    async def of(self, host: str, runtime: ContainerRuntime, image_id: str, ref: str) -> str | None:
        """``<repository>@sha256:...`` for the image `image_id` pulled as `ref` on `host`; None when the
        image has no digest for that repository (built locally, never pushed)."""
        key = (host, image_id, ref)
        known = self._known.get(key)
        if known is not None:
            return known
        asking = self._asking.get(key)
        if asking is None:
            asking = asyncio.ensure_future(self._ask(key, runtime))
            self._asking[key] = asking
        return await asyncio.shield(asking)

    async def _ask(self, key: tuple[str, str, str], runtime: ContainerRuntime) -> str | None:
        _, image_id, ref = key
        try:
            image = await runtime.inspect_image(image_id)
        finally:
            self._asking.pop(key, None)
        digest = digest_for(ref, image.repo_digests) if image else None
        known = f"{split_reference(ref)[0]}@{digest}" if digest else None
        if known is not None:  # none yet (not pulled, or never pushed): asked again next time
            if len(self._known) >= _KEPT:
                self._known.clear()
            self._known[key] = known
        return known
