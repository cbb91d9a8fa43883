"""The image GC of one Docker host: every interval, remove the workspace images no container has used
for the configured delay (`core.image_gc` decides which). Off unless WC_IMAGE_GC_AFTER is set."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from controller import metrics
from controller.core.image_gc import collect
from controller.port.errors import ContainerRuntimeError, InUse
from controller.port.runtime import ContainerRuntime

log = logging.getLogger(__name__)


class ImageCollector:
    def __init__(
        self,
        *,
        runtime: ContainerRuntime,
        host: str,
        prefix: str,
        delay: float,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._runtime = runtime
        self._host = host
        self._prefix = prefix
        self._delay = delay
        self._interval = interval
        self._clock = clock
        self._unused_since: dict[str, float] = {}

    async def run_forever(self) -> None:
        while True:
            await self.collect_once()
            await asyncio.sleep(self._interval)

    async def collect_once(self) -> int:
        """One pass; the number of images removed. A daemon that does not answer skips the pass."""
        try:
            images = await self._runtime.list_images()
            in_use = await self._runtime.image_ids_in_use()
        except ContainerRuntimeError as exc:
            log.warning("DockerHost %s: image GC pass skipped: %s", self._host, exc)
            metrics.IMAGE_GC_PASSES.labels(self._host, "skipped").inc()
            return 0
        verdict = collect(
            images,
            in_use,
            self._runtime.pulling(),
            prefix=self._prefix,
            unused_since=self._unused_since,
            now=self._clock(),
            delay=self._delay,
        )
        self._unused_since = verdict.unused_since
        removed = 0
        for image in verdict.remove:
            name = ", ".join(image.repo_tags) or image.id
            try:
                await self._runtime.remove_image(image)
            except InUse:
                continue  # a container took it up since the list: it stays
            except ContainerRuntimeError as exc:
                log.warning("DockerHost %s: could not remove image %s: %s", self._host, name, exc)
                continue
            removed += 1
            metrics.IMAGE_GC_REMOVED.labels(self._host).inc()
            log.info(
                "DockerHost %s: removed image %s, unused for %.0fs or more", self._host, name, self._delay
            )
        metrics.IMAGE_GC_PASSES.labels(self._host, "completed").inc()
        return removed
