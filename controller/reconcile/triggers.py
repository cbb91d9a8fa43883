"""Wake-ups for the per-Workspace reconcile loops: a tiny work queue keyed by Workspace uid.

Several triggers arriving while a reconcile runs coalesce into one more pass, as in a
controller-runtime work queue: one reconcile in flight per Workspace, never a backlog.
"""

from __future__ import annotations

import asyncio


class Triggers:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._urgent: set[str] = set()

    def register(self, uid: str) -> asyncio.Event:
        return self._events.setdefault(uid, asyncio.Event())

    def unregister(self, uid: str) -> None:
        self._events.pop(uid, None)
        self._urgent.discard(uid)

    def wake(self, uid: str, *, fresh_observation: bool = False) -> bool:
        """Ask for a reconcile of one Workspace; False if no loop runs for that uid here.

        ``fresh_observation`` asks the next pass to inspect its container rather than trust the last
        batched list (a Docker event said something changed).
        """
        event = self._events.get(uid)
        if event is None:
            return False
        if fresh_observation:
            self._urgent.add(uid)
        event.set()
        return True

    def wake_all(self) -> None:
        for event in self._events.values():
            event.set()

    def registered(self) -> list[str]:
        """The uids of the loops that run here."""
        return list(self._events)

    def take_fresh_observation(self, uid: str) -> bool:
        """Whether a Docker event arrived for this uid since the last call (and forget it)."""
        if uid in self._urgent:
            self._urgent.discard(uid)
            return True
        return False

    async def wait(self, uid: str, seconds: float | None) -> bool:
        """Wait for a wake-up or the timeout; True when woken. Clears the trigger either way."""
        event = self.register(uid)
        try:
            await asyncio.wait_for(event.wait(), seconds)
            return True
        except TimeoutError:
            return False
        finally:
            event.clear()

    def __len__(self) -> int:
        return len(self._events)
