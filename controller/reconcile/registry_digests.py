"""The digest each tag names in its registry, asked once per image per interval for all Workspaces.

Every Workspace under spec.imageUpdate asks on each of its passes; the registry hears one distribution
inspect per (image, credentials) per `max_age`, and Workspaces asking together share the one request.
Credentials are part of the key: one tenant's pull Secret never answers for another's Workspace.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

from controller.core.image_refresh import Answer
from controller.port.errors import ContainerRuntimeError
from controller.port.runtime import ContainerRuntime
from controller.port.values import RegistryCredentials


class RegistryDigests:
    def __init__(
        self,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._monotonic = monotonic
        self._clock = clock
        self._known: dict[tuple[str, str], Answer] = {}
        self._asking: dict[tuple[str, str], asyncio.Future[Answer]] = {}
        self.requests = 0
        """Registry requests made (the benchmark and the tests read it)."""

    async def latest(
        self,
        runtime: ContainerRuntime,
        image: str,
        credentials: RegistryCredentials | None,
        max_age: float,
    ) -> Answer:
        """The tag's digest, no older than `max_age` seconds; a failure is an answer too (asked again
        after `max_age` like a success, so a registry that is down is not hammered)."""
        key = (image, credentials_fingerprint(credentials))
        known = self._known.get(key)
        if known is not None and self._monotonic() - known.asked_at < max_age:
            return known
        asking = self._asking.get(key)
        if asking is None:
            asking = asyncio.ensure_future(self._ask(runtime, image, credentials, key))
            self._asking[key] = asking
        return await asyncio.shield(asking)

    def due_in(self, answer: Answer, max_age: float) -> float:
        """Seconds until `answer` is older than `max_age` (0 when it is already)."""
        return max(answer.asked_at + max_age - self._monotonic(), 0.0)

    async def _ask(
        self,
        runtime: ContainerRuntime,
        image: str,
        credentials: RegistryCredentials | None,
        key: tuple[str, str],
    ) -> Answer:
        self.requests += 1
        try:
            digest: str | None = await runtime.registry_digest(image, credentials)
            error = None
        except ContainerRuntimeError as exc:
            digest, error = None, str(exc)
        finally:
            self._asking.pop(key, None)
        answer = Answer(digest, error, self._clock(), self._monotonic())
        self._known[key] = answer
        return answer


def credentials_fingerprint(credentials: RegistryCredentials | None) -> str:
    if credentials is None:
        return ""
    parts = (credentials.serveraddress, credentials.username, credentials.password, credentials.identitytoken)
    material = "\0".join(parts)
    return hashlib.sha256(material.encode()).hexdigest()
