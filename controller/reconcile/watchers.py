"""What wakes the per-Workspace loops besides changes to the Workspaces themselves: the periodic resync
(one list of the runtime's containers for everyone) and the runtime's container event stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from controller import metrics
from controller.core import labels
from controller.port.errors import ContainerRuntimeError
from controller.port.runtime import ContainerRuntime
from controller.port.values import CONNECTED, DISCONNECTED, RECONNECTED
from controller.reconcile.observer import Observer
from controller.reconcile.triggers import Triggers

log = logging.getLogger(__name__)

RESUBSCRIBE_DELAY = 1.0


async def resync_forever(
    observer: Observer, triggers: Triggers, interval: float, *, wake: Callable[[], None] | None = None
) -> None:
    """The safety net: one list for everyone, then the loops take a look (`wake`: the loops of the
    runtime's Workspaces but those the list shows as their last pass left them settled; default every
    loop; never one backing off after a failed pass)."""
    wake_all = wake or (lambda: triggers.wake_all(routine=True))
    while True:
        try:
            await observer.refresh()
        except ContainerRuntimeError as exc:
            log.warning("resync: listing containers failed: %s", exc)
        except Exception:  # the safety net must never stop
            log.exception("resync: listing containers failed unexpectedly")
        wake_all()
        await asyncio.sleep(interval)


async def follow_runtime_events(
    runtime: ContainerRuntime,
    observer: Observer,
    triggers: Triggers,
    instance: str,
    *,
    wake: Callable[[], None] | None = None,
) -> None:
    """React within about a second: a container died, was OOM-killed, removed, became unhealthy.
    When the stream itself ends or comes back, `wake` (default: every loop) takes a look."""
    wake_all = wake or triggers.wake_all
    owned = labels.owned(instance)
    while True:
        try:
            async for event in runtime.events(owned):
                metrics.DOCKER_EVENTS.labels(event.kind).inc()
                if event.kind in (CONNECTED, DISCONNECTED, RECONNECTED):
                    # Disconnected: the daemon may be gone; every loop looks now (and says so) instead of
                    # reporting the last known state until the next resync. Reconnected: events may have
                    # been missed while the stream was down: re-observe everything.
                    if event.kind != CONNECTED:
                        with contextlib.suppress(ContainerRuntimeError):
                            await observer.refresh()
                        wake_all()
                    continue
                observer.note_event(event)
                uid = event.labels.get(labels.UID_LABEL)
                if uid and observer.news(event):
                    observer.heard(event.name)  # whichever of the Workspace's containers it is
                    triggers.wake(uid, fresh_observation=True, routine=True)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("following container events failed; starting again")
            await asyncio.sleep(RESUBSCRIBE_DELAY)
