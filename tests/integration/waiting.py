"""Waiting for real systems to get somewhere, with deadlines, never with bare sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from controller.port.values import ContainerEvent

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    within: float,
    what: str,
    interval: float = 0.1,
) -> T:
    """Call `probe` until it returns something other than None (or False); fail after `within` s."""
    deadline = time.monotonic() + within
    last: object = None
    while True:
        try:
            result = await probe()
        except AssertionError as exc:
            result, last = None, exc
        if result is not None and result is not False:
            return result
        if result is not None:
            last = result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not reached within {within}s (last: {last!r})")
        await asyncio.sleep(interval)


def http_get(url: str, timeout: float = 2.0) -> str | None:
    """The body of a 200 answer, or None while the server is not answering (yet)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body: bytes = response.read()
            return body.decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


class EventLog:
    """Drains an event stream in the background so tests can wait for events without touching it."""

    def __init__(self, stream: AsyncIterator[ContainerEvent]) -> None:
        self.events: list[ContainerEvent] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._drain(stream))

    async def _drain(self, stream: AsyncIterator[ContainerEvent]) -> None:
        try:
            async for event in stream:
                self.events.append(event)
                self._changed.set()
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def wait_for(
        self, predicate: Callable[[ContainerEvent], bool], *, within: float, what: str, start: int = 0
    ) -> ContainerEvent:
        """The first event from index `start` on that satisfies `predicate`."""
        deadline = time.monotonic() + within
        index = start
        while True:
            while index < len(self.events):
                if predicate(self.events[index]):
                    return self.events[index]
                index += 1
            left = deadline - time.monotonic()
            if left <= 0 or self._task.done():
                kinds = [(e.kind, e.name) for e in self.events]
                raise AssertionError(f"{what}: no such event within {within}s; saw {kinds}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    @property
    def running(self) -> bool:
        return not self._task.done()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
