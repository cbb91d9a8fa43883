"""The event follower's own signals, driven by a scripted subscription: what a consumer is told when the
stream starts, ends, cannot be opened, and comes back."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from controller.docker.event_stream import follow_events
from controller.port.values import CONNECTED, DISCONNECTED, RECONNECTED

DIE = {
    "Type": "container",
    "Action": "die",
    "id": "c" * 64,
    "Actor": {"ID": "c" * 64, "Attributes": {"name": "ws-a", "exitCode": "1"}},
    "timeNano": 1,
}


Source = Callable[[], tuple[Iterable[Any], Callable[[], None]]]


def scripted(*steps: list[dict[str, Any]] | Exception) -> Source:
    """Each open takes the next step: a finite list of messages (then the stream ends) or a failure to
    subscribe. After the script, a stream that stays open with nothing to say until closed."""
    remaining = list(steps)

    def open_source() -> tuple[Iterable[Any], Callable[[], None]]:
        if remaining:
            step = remaining.pop(0)
            if isinstance(step, Exception):
                raise step
            return iter(step), lambda: None
        closed = threading.Event()

        def quiet() -> Iterator[Any]:
            closed.wait(5)
            yield from ()

        return quiet(), closed.set

    return open_source


async def kinds(source: Source, count: int) -> list[str]:
    seen: list[str] = []
    stream = follow_events(source, initial_backoff=0.01, max_backoff=0.02)
    async with contextlib.aclosing(stream):
        async for event in stream:
            seen.append(event.kind)
            if len(seen) == count:
                break
    return seen


def test_a_stream_that_ends_says_disconnected_then_reconnected() -> None:
    seen = asyncio.run(asyncio.wait_for(kinds(scripted([DIE], [DIE]), 6), 5))
    assert seen == [CONNECTED, "die", DISCONNECTED, RECONNECTED, "die", DISCONNECTED]


def test_failed_subscriptions_while_away_say_nothing_more_than_one_disconnected() -> None:
    refused = ConnectionRefusedError("daemon away")
    seen = asyncio.run(asyncio.wait_for(kinds(scripted([], refused, refused, refused, [DIE]), 5), 5))
    assert seen == [CONNECTED, DISCONNECTED, RECONNECTED, "die", DISCONNECTED]
