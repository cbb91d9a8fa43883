"""Batched observation of this controller's containers.

One `list` of the instance's containers per resync serves every Workspace. A Workspace's reconcile
inspects its container only when a Docker event brought news of it, when this controller changed it
since the last inspect, or when a list taken since the last inspect shows something that inspect did not
(another id, state or health); otherwise the newer of the list and the last inspect speaks for it. A
steady, healthy fleet therefore costs one Docker call per resync in all.

Docker forgets a container's exit code as soon as it runs again (inspect then says 0), and that is soon:
its restart policy restarts a crashed agent within 100 ms, the controller restarts one stopped or killed
by hand. Each `die` event carries the exit code, so the observer keeps the last one per container and
reports it for a container that runs again, like Kubernetes' last termination state. (Docker itself
keeps OOMKilled set across restarts.)
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from controller import metrics
from controller.api.workspace import ContainerStatus
from controller.core import labels
from controller.core.identity import WorkspaceRef
from controller.core.list_confirmation import confirmed
from controller.port.runtime import ContainerRuntime
from controller.port.values import ContainerEvent, ObservedContainer


def _fingerprint(container: ObservedContainer) -> tuple[str, str, str | None, str | None]:
    return (container.id, container.state, container.health, labels.read_config_hash(container.labels))


OWN_ECHO_SECONDS = 10.0
"""How long after this controller changed a container its `create` and `start` events are taken for the
echo of that change."""


@dataclass(frozen=True)
class Snapshot:
    by_name: Mapping[str, ObservedContainer]
    taken_at: float
    taken_wall: float = 0.0
    """The same moment on the wall clock (epoch seconds), to compare with the daemon's times."""


class Observer:
    def __init__(self, runtime: ContainerRuntime, instance: str) -> None:
        self._runtime = runtime
        self._instance = instance
        self._filter = labels.owned(instance)
        self._snapshot: Snapshot | None = None
        self._details: dict[str, ObservedContainer] = {}
        self._detail_at: dict[str, float] = {}  # name -> when the detail above was asked for
        self._named: set[str] = set()  # names a Docker event brought news of, not inspected since
        self._changed_at: dict[str, float] = {}
        self._settled: dict[str, tuple[str, str, str | None, str | None]] = {}  # name -> fingerprint
        self._last_exit: dict[str, int] = {}  # container id -> exit code of its last run
        self._in_flight: dict[str, int] = {}  # name -> this controller's calls changing it, under way

    async def refresh(self) -> Snapshot:
        """List this instance's containers (one runtime call). After a failure `observe` inspects instead."""
        try:
            containers = await self._runtime.list_containers(self._filter)
        except Exception:
            self._snapshot = None
            raise
        snapshot = Snapshot({c.name: c for c in containers}, time.monotonic(), time.time())
        listed = {c.id for c in containers}
        self._last_exit = {cid: code for cid, code in self._last_exit.items() if cid in listed}
        self._snapshot = snapshot
        return snapshot

    def touched(self, name: str) -> None:
        """This controller just changed the container: the current list no longer speaks for it."""
        self._changed_at[name] = time.monotonic()
        self._details.pop(name, None)
        self._detail_at.pop(name, None)
        self._settled.pop(name, None)

    @contextlib.contextmanager
    def changing(self, name: str) -> Iterator[None]:
        """Around a call of this controller's that changes the container (create, start, ...): the list
        no longer speaks for it from before the call until after it, and the daemon's `create` and
        `start` events while the call is under way are its echo, however long the call waited for a
        free slot before reaching the daemon."""
        self.touched(name)
        self._in_flight[name] = self._in_flight.get(name, 0) + 1
        try:
            yield
        finally:
            left = self._in_flight.pop(name) - 1
            if left:
                self._in_flight[name] = left
            self.touched(name)

    def settle(self, name: str, container: ObservedContainer | None) -> None:
        """A pass left the Workspace of container `name` settled with `container` as it saw it (None:
        not settled): until a list shows that container otherwise, the resync need not wake it."""
        if container is None:
            self._settled.pop(name, None)
        else:
            self._settled[name] = _fingerprint(container)

    def quiet(self) -> set[str]:
        """The Workspaces (uids) whose container the last list shows just as their last pass left it
        settled: nothing for the resync to look at. Empty without a usable list."""
        snapshot = self._snapshot
        if snapshot is None:
            return set()
        quiet = set()
        for name, settled in self._settled.items():
            listed = snapshot.by_name.get(name)
            if listed is None or self._changed_at.get(name, 0.0) >= snapshot.taken_at:
                continue
            uid = listed.labels.get(labels.UID_LABEL)
            if uid and _fingerprint(listed) == settled:
                quiet.add(uid)
        return quiet

    def note_event(self, event: ContainerEvent) -> None:
        """Learn from a container event what inspect cannot say later: how the container's last run ended."""
        if event.kind == "die" and event.exit_code is not None and event.container_id:
            self._last_exit[event.container_id] = event.exit_code
        elif event.kind == "destroy":
            self._last_exit.pop(event.container_id, None)

    async def owned_by(self, workspace: WorkspaceRef, names: tuple[str, ...] = ()) -> list[ObservedContainer]:
        """The containers labelled for Workspace `uid`, whatever their names (a rename by hand included),
        from the last list. The list is taken again first (one call, for everyone) when it cannot speak
        for them: there is none, or this controller changed one of `names` since (a container made after
        the list and renamed since is in no list yet)."""
        snapshot = self._snapshot
        if snapshot is None or any(self._changed_at.get(n, 0.0) >= snapshot.taken_at for n in names):
            snapshot = await self.refresh()
        return [c for c in snapshot.by_name.values() if labels.owns(c.labels, self._instance, workspace)]

    def news(self, event: ContainerEvent) -> bool:
        """Whether the event may say something the last inspect of its container did not: the `create`
        and `start` of a container already seen running, or a health verdict already known, are the
        echo of this controller's own create and start (or of what it has seen since), and need no look.
        Everything else (die, oom, kill, stop, destroy, rename, pause, ...) does."""
        if event.kind in ("create", "start") and event.name in self._in_flight:
            return False  # this controller's own call, under way: the pass that made it looks next
        known = self._details.get(event.name)
        if known is None:
            # Made or started by this controller a moment ago, and not looked at since: the pass that
            # did it inspects it next (the daemon's event comes before that pass's inspect does).
            changed = self._changed_at.get(event.name)
            ours = changed is not None and time.monotonic() - changed < OWN_ECHO_SECONDS
            return not (ours and event.kind in ("create", "start"))
        if known.id != event.container_id:
            return True
        if event.kind == "create":
            return False
        if event.kind == "start":
            return not known.running
        if event.kind == "health_status":
            return event.health is None or event.health != known.health
        return True

    def heard(self, name: str) -> None:
        """A Docker event brought news of the container (`news`): the next look at it inspects."""
        self._named.add(name)

    def forget(self, name: str) -> None:
        self._named.discard(name)
        self._details.pop(name, None)
        self._detail_at.pop(name, None)
        self._changed_at.pop(name, None)
        self._settled.pop(name, None)

    def listed(self, name: str) -> bool:
        """Whether the last list showed a container of that name (or none was usable, or it changed
        since): whether `observe` can tell anything new without a reason to expect it."""
        snapshot = self._snapshot
        if snapshot is None or name in self._named or self._changed_at.get(name, 0.0) >= snapshot.taken_at:
            return True
        return name in snapshot.by_name

    async def observe(
        self, name: str, *, fresh: bool = False, recorded: ContainerStatus | None = None
    ) -> ObservedContainer | None:
        """The container named `name` with full detail, or None when it does not exist. `fresh`: inspect
        whatever was seen before (as for a container a Docker event brought news of). `recorded`: what
        the Workspace's status says of it, which spares the first inspect when the list shows that very
        run (a controller that starts again confirms its fleet from one list)."""
        snapshot = self._snapshot
        if fresh or name in self._named:
            return await self._inspect(name, "asked")
        # No usable list (the last one failed): ask Docker about this one container.
        if snapshot is None:
            return await self._inspect(name, "no_list")
        known = self._details.get(name)
        if known is not None and self._detail_at.get(name, 0.0) >= snapshot.taken_at:
            # Inspected since the list was taken (and since this controller last changed it, which
            # forgets the detail): newer than the list, and any change since would have been an event.
            return known
        # Changed by this controller since the list: the list cannot speak for it.
        if self._changed_at.get(name, 0.0) >= snapshot.taken_at:
            return await self._inspect(name, "changed")
        listed = snapshot.by_name.get(name)
        if listed is None:
            self._details.pop(name, None)
            return None
        if known is not None and _fingerprint(known) == _fingerprint(listed):
            return known
        if known is None and (vouched := confirmed(listed, recorded, snapshot.taken_wall)) is not None:
            self._details[name] = vouched
            self._detail_at[name] = snapshot.taken_at
            return vouched
        return await self._inspect(name, "differs" if known is not None else "unknown")

    async def _inspect(self, name: str, reason: str) -> ObservedContainer | None:
        metrics.CONTAINER_INSPECTS.labels(reason).inc()
        self._named.discard(name)  # before the call: an event while it is under way asks again
        asked_at = time.monotonic()
        container = await self._runtime.inspect_container(name)
        if container is None:
            self._details.pop(name, None)
        else:
            container = with_last_exit(container, self._last_exit.get(container.id))
            self._details[name] = container
            self._detail_at[name] = asked_at
        return container


def with_last_exit(container: ObservedContainer, last_exit: int | None) -> ObservedContainer:
    """The container with the exit code of its last run when inspect no longer says it (it runs again)."""
    if container.exit_code is not None or last_exit is None:
        return container
    return replace(container, exit_code=last_exit)
