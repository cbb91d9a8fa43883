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
        self._backing_off: set[str] = set()
        self._routine_only: set[str] = set()
        self._namespaces: dict[str, str] = {}
        self._aliases: dict[str, str] = {}  # a bound slot's ID (its containers' uid label) -> the uid

    def alias(self, label_uid: str, uid: str) -> None:
        """Docker objects labelled `label_uid` are Workspace `uid`'s (a warm slot it is bound to)."""
        if label_uid != uid:
            self._aliases[label_uid] = uid

    def register(self, uid: str, namespace: str | None = None) -> asyncio.Event:
        if namespace is not None:
            self._namespaces[uid] = namespace
        return self._events.setdefault(uid, asyncio.Event())

    def unregister(self, uid: str) -> None:
        self._events.pop(uid, None)
        self._urgent.discard(uid)
        self._backing_off.discard(uid)
        self._routine_only.discard(uid)
        self._namespaces.pop(uid, None)
        for label_uid in [k for k, v in self._aliases.items() if v == uid]:
            del self._aliases[label_uid]

    def resolve(self, label_uid: str) -> str:
        """The Workspace uid Docker objects labelled `label_uid` belong to."""
        return self._aliases.get(label_uid, label_uid)

    def wake(self, uid: str, *, fresh_observation: bool = False, routine: bool = False) -> bool:
        """Ask for a reconcile of one Workspace; False if no loop runs for that uid here.

        ``fresh_observation`` asks the next pass to inspect its container rather than trust the last
        batched list (a Docker event said something changed). A ``routine`` wake (a container event, the
        periodic resync) does not cut short the backoff of a loop whose last pass failed: that pass's own
        creates, starts and removals send events, and a resync comes every few seconds in some setups,
        either of which would otherwise retry a failing pass at once, again and again. A change of the
        Workspace, or of its host's state, still ends the wait.
        """
        uid = self._aliases.get(uid, uid)
        event = self._events.get(uid)
        if event is None:
            return False
        if fresh_observation:
            self._urgent.add(uid)
        if routine:
            if uid in self._backing_off:
                return True
            if not event.is_set():
                self._routine_only.add(uid)  # so far only routine wakes: a backoff may drop them
        else:
            self._routine_only.discard(uid)
        event.set()
        return True

    def wake_namespace(self, namespace: str) -> None:
        """Wake the loops of the Workspaces in `namespace` (its labels changed: what it is granted)."""
        for uid, where in list(self._namespaces.items()):
            if where == namespace:
                self.wake(uid)

    def wake_all(self, *, routine: bool = False) -> None:
        for uid in self._events:
            self.wake(uid, routine=routine)

    def registered(self) -> list[str]:
        """The uids of the loops that run here."""
        return list(self._events)

    def take_fresh_observation(self, uid: str) -> bool:
        """Whether a Docker event arrived for this uid since the last call (and forget it)."""
        if uid in self._urgent:
            self._urgent.discard(uid)
            return True
        return False

    async def wait(self, uid: str, seconds: float | None, *, backing_off: bool = False) -> bool:
        """Wait for a wake-up or the timeout; True when woken. Clears the trigger either way.
        `backing_off`: after a failed pass, when Docker events do not end the wait (see `wake`)."""
        event = self.register(uid)
        if backing_off:
            self._backing_off.add(uid)
            if uid in self._routine_only:
                event.clear()  # routine wakes that came while the failing pass ran: no reason to retry
        self._routine_only.discard(uid)
        try:
            await asyncio.wait_for(event.wait(), seconds)
            return True
        except TimeoutError:
            return False
        finally:
            self._backing_off.discard(uid)
            self._routine_only.discard(uid)
            event.clear()

    def __len__(self) -> int:
        return len(self._events)
