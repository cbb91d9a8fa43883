"""The daemon's container event stream, followed in a thread and delivered to asyncio as the port's
`ContainerEvent`s.

Synthetic events tell the consumer about the stream itself: CONNECTED once the first subscription is
live; DISCONNECTED when a live stream ends or breaks (the daemon may be gone: look now); RECONNECTED after
the stream had to be re-established (the daemon restarted or the connection broke) or events had to be
dropped because the consumer fell behind (the picture may have gaps: re-list everything).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from controller.docker.classify import classify
from controller.port.values import CONNECTED, DISCONNECTED, RECONNECTED, ContainerEvent, Health

__all__ = [
    "CONTAINER_ACTIONS",
    "EventSource",
    "follow_events",
    "parse_event",
]

log = logging.getLogger(__name__)

CONTAINER_ACTIONS: tuple[str, ...] = (
    "create",
    "start",
    "die",
    "oom",
    "kill",
    "stop",
    "destroy",
    "rename",
    "pause",
    "unpause",
    "health_status",
)
"""Container actions worth waking a reconcile for (exec_* from healthchecks are deliberately left out)."""

# Actor attributes that are not container labels (Docker mixes both into one map).
_NON_LABEL_ATTRIBUTES = frozenset(("name", "image", "exitCode", "signal", "execID", "oldName"))


def parse_event(raw: Mapping[str, Any]) -> ContainerEvent | None:
    """Parse one decoded message of `GET /events`; None unless it is a container action we follow."""
    if raw.get("Type", "container") != "container":
        return None
    action = raw.get("Action") or raw.get("status")
    if not isinstance(action, str):
        return None
    kind = action.split(":", 1)[0].strip()
    if kind not in CONTAINER_ACTIONS:
        return None
    actor = raw.get("Actor")
    attributes = actor.get("Attributes") if isinstance(actor, Mapping) else None
    attrs: Mapping[str, Any] = attributes if isinstance(attributes, Mapping) else {}
    container_id = actor.get("ID") if isinstance(actor, Mapping) else None
    if not isinstance(container_id, str) or not container_id:
        container_id = raw.get("id") if isinstance(raw.get("id"), str) else ""
    health: Health | None = None
    if kind == "health_status":
        verdict = action.split(":", 1)[1].strip() if ":" in action else ""
        health = verdict if verdict in ("starting", "healthy", "unhealthy") else None  # type: ignore[assignment]
    exit_code = attrs.get("exitCode")
    return ContainerEvent(
        kind=kind,
        action=action,
        container_id=str(container_id),
        name=str(attrs.get("name") or ""),
        labels=MappingProxyType(
            {str(k): str(v) for k, v in attrs.items() if k not in _NON_LABEL_ATTRIBUTES and v is not None}
        ),
        exit_code=int(exit_code) if isinstance(exit_code, str) and exit_code.lstrip("-").isdigit() else None,
        health=health,
        time=_event_time(raw),
    )


def _event_time(raw: Mapping[str, Any]) -> float | None:
    nanos = raw.get("timeNano")
    if isinstance(nanos, int) and not isinstance(nanos, bool):
        return nanos / 1e9
    seconds = raw.get("time")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return float(seconds)
    return None


EventSource = Callable[[], tuple[Iterable[Any], Callable[[], None]]]
"""Opens a subscription (blocking, called in the follower thread): returns the decoded message
iterator and a function that closes it, which must be callable from another thread and idempotent."""


async def follow_events(
    open_source: EventSource,
    *,
    shutdown: threading.Event | None = None,
    initial_backoff: float = 0.5,
    max_backoff: float = 10.0,
    max_queued: int = 10_000,
) -> AsyncGenerator[ContainerEvent, None]:
    """Yield events from `open_source` until the consumer stops iterating or `shutdown` is set.

    The blocking read runs in its own thread (not the call executor: it never returns). When the
    consumer goes away (cancelled, or the generator closed), the subscription is closed, which ends
    the blocked read and the thread. Use `contextlib.aclosing` to close it deterministically after
    a `break`. Setting `shutdown` (and closing the current subscription) ends the iteration.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[ContainerEvent | None] = asyncio.Queue()

    def offer(event: ContainerEvent | None) -> None:  # runs on the event loop
        if event is not None and queue.qsize() >= max_queued:
            log.warning("docker events: consumer fell behind by %d events; asking it to resync", max_queued)
            while not queue.empty():
                queue.get_nowait()
            event = ContainerEvent(kind=RECONNECTED)
        queue.put_nowait(event)

    def deliver(event: ContainerEvent | None) -> bool:  # runs in the follower thread
        try:
            loop.call_soon_threadsafe(offer, event)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            return False
        return True

    follower = _Follower(open_source, deliver, shutdown or threading.Event(), initial_backoff, max_backoff)
    thread = threading.Thread(target=follower.run, name="docker-events", daemon=True)
    thread.start()
    try:
        while (event := await queue.get()) is not None:
            yield event
    finally:
        follower.stop()


class _Follower:
    def __init__(
        self,
        open_source: EventSource,
        deliver: Callable[[ContainerEvent | None], bool],
        shutdown: threading.Event,
        initial_backoff: float,
        max_backoff: float,
    ) -> None:
        self._open = open_source
        self._deliver = deliver
        self._shutdown = shutdown
        self._initial = initial_backoff
        self._max = max_backoff
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._close: Callable[[], None] | None = None

    def stop(self) -> None:
        """Called by the consumer side: end the thread, closing the subscription it is blocked on."""
        self._stopped.set()
        with self._lock:
            close, self._close = self._close, None
        if close is not None:
            _quietly(close)

    def _done(self) -> bool:
        return self._stopped.is_set() or self._shutdown.is_set()

    def _wait(self, seconds: float) -> None:
        # Wake early on either signal; the shutdown event is shared, so poll it in short steps.
        deadline = time.monotonic() + seconds
        while not self._done() and (left := deadline - time.monotonic()) > 0:
            self._stopped.wait(min(left, 0.1))

    def run(self) -> None:
        try:
            self._follow()
        finally:
            if not self._stopped.is_set():
                self._deliver(None)  # tell the consumer the stream is over (adapter shut down)

    def _follow(self) -> None:
        delay = self._initial
        was_connected = False
        while not self._done():
            try:
                messages, close = self._open()
            except Exception as exc:  # any failure to subscribe means: retry later
                log.warning("docker events: cannot subscribe (%s); retrying in %.1fs", classify(exc), delay)
                self._wait(delay)
                delay = min(delay * 2, self._max)
                continue
            with self._lock:
                if self._done():
                    _quietly(close)
                    return
                self._close = close
            if not self._deliver(ContainerEvent(kind=RECONNECTED if was_connected else CONNECTED)):
                self.stop()
                return
            was_connected = True
            delay = self._initial
            self._pump(messages)
            with self._lock:
                self._close = None
            _quietly(close)
            if not self._done():
                log.warning("docker events: stream ended; reconnecting in %.1fs", delay)
                if not self._deliver(ContainerEvent(kind=DISCONNECTED)):
                    self.stop()
                    return
                self._wait(delay)
                delay = min(delay * 2, self._max)

    def _pump(self, messages: Iterable[Any]) -> None:
        try:
            for raw in messages:
                if self._done():
                    return
                event = parse_event(raw) if isinstance(raw, Mapping) else None
                if event is not None and not self._deliver(event):
                    self._stopped.set()
                    return
        except Exception as exc:  # a broken stream is reconnected, whatever broke it
            if not self._done():
                log.warning("docker events: stream broke (%s)", classify(exc))


def _quietly(close: Callable[[], None]) -> None:
    try:
        close()
    except Exception:  # closing a dead stream may fail; it is gone either way
        log.debug("docker events: error while closing the stream", exc_info=True)
