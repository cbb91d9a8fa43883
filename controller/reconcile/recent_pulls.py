"""Pulls of one image on one Docker host, shared by the Workspaces that need it at about the same time.

A moving tag (`:latest`) is re-pulled before each create, as the Go provisioner did, so that a cached
copy is never trusted for long. Trusted for `window` seconds instead of not at all, a burst of 300
Workspaces on 9 images costs 9 pulls, not 300: a pull finished within the window serves every create
that follows, and creates asking while a pull is under way wait for that one. A failed pull is not
remembered (the next pass asks the registry again, under its own backoff). Credentials are part of the
key: one tenant's pull Secret never fetches the image another tenant's Workspace runs.

It also remembers which images a create found missing on this host and no pull or inspect has found
since: a Workspace stalled on such an image asks the registry again on its next pass, but does not try a
create that cannot succeed first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from controller.port.values import RegistryCredentials
from controller.reconcile.registry_digests import credentials_fingerprint

_KEPT = 256
_FORGET_AFTER = 3600.0  # longer than any sensible window


@dataclass(frozen=True)
class Pulled:
    """A finished pull: the image ID it gave, and whether this caller's own request made it."""

    image_id: str
    shared: bool


class RecentPulls:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._done: dict[tuple[str, str, str], tuple[float, str]] = {}
        self._pulling: dict[tuple[str, str, str], asyncio.Future[str]] = {}
        self._missing: set[str] = set()
        self.pulls = 0
        """Pulls started (the tests and the benchmark read it)."""

    def missing(self, image: str) -> bool:
        """Whether a create found `image` missing and nothing has found it on the host since."""
        return image in self._missing

    def found_missing(self, image: str) -> None:
        if len(self._missing) >= _KEPT:
            self._missing.clear()  # a memory, not a record: forgetting costs one create that fails
        self._missing.add(image)

    def found(self, image: str) -> None:
        self._missing.discard(image)

    async def pull(
        self,
        image: str,
        platform: str | None,
        credentials: RegistryCredentials | None,
        do_pull: Callable[[], Awaitable[str]],
        *,
        window: float,
    ) -> Pulled:
        """The image pulled no longer than `window` seconds ago (0: a pull of its own, or the one under
        way), `do_pull` making it when none is."""
        key = (image, platform or "", credentials_fingerprint(credentials))
        if window <= 0:
            # A pull of its own (Always, a new image of the tag): one under way may have begun before
            # the tag moved, so it is not joined.
            return Pulled(await self._pull(key, do_pull, shared=False), shared=False)
        done = self._done.get(key)
        if done is not None and self._monotonic() - done[0] < window:
            return Pulled(done[1], shared=True)
        pulling = self._pulling.get(key)
        if pulling is not None:
            return Pulled(await asyncio.shield(pulling), shared=True)
        pulling = asyncio.ensure_future(self._pull(key, do_pull))
        self._pulling[key] = pulling
        return Pulled(await asyncio.shield(pulling), shared=False)

    async def _pull(
        self, key: tuple[str, str, str], do_pull: Callable[[], Awaitable[str]], *, shared: bool = True
    ) -> str:
        self.pulls += 1
        try:
            image_id = await do_pull()
        finally:
            if shared:
                self._pulling.pop(key, None)
        self.found(key[0])
        now = self._monotonic()
        if len(self._done) >= _KEPT:
            self._done = {k: v for k, v in self._done.items() if now - v[0] < _FORGET_AFTER}
        self._done[key] = (now, image_id)
        return image_id
