"""The placement ledger: which host each Workspace is on and what it takes there, and the one place where new
Workspaces are placed (`core.placement.place` over the hosts as they are now).

Placing is serialised (one at a time), so two Workspaces never both take a host's last room. The ledger is
seeded from every Workspace's `status.host` at start-up, before any loop runs, and each pass confirms its
own entry; an entry goes when its Workspace is deleted, which wakes the Workspaces waiting for room.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from controller.api.workspace import Placement
from controller.core.placement import (
    HOST_NETWORK_TIER,
    HostView,
    Placed,
    Request,
    Resources,
    Unschedulable,
    place,
)
from controller.core.tiers import TierLimits


class PlacementTarget(Protocol):
    """A host as the scheduler needs it."""

    @property
    def name(self) -> str: ...

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def ready(self) -> bool: ...

    @property
    def unschedulable(self) -> bool: ...

    def capacity(self) -> Resources | None: ...

    @property
    def bounded(self) -> bool: ...

    @property
    def runtimes(self) -> frozenset[str] | None: ...


@dataclass(frozen=True)
class Allocation:
    host: str
    request: Request


@dataclass(frozen=True)
class HostLoad:
    """What the Workspaces placed on one host take."""

    resources: Resources
    workspaces: int
    by_tier: Mapping[int, int]

    @property
    def host_network_taken(self) -> bool:
        return self.by_tier.get(HOST_NETWORK_TIER, 0) > 0


class Scheduler:
    def __init__(
        self,
        *,
        hosts: Callable[[], Sequence[PlacementTarget]],
        limits: Mapping[int, TierLimits],
        wake: Callable[[str], object],
        on_change: Callable[[str], None] = lambda host: None,
    ) -> None:
        self._hosts = hosts
        self._limits = limits
        self._wake = wake
        self._on_change = on_change
        self._ledger: dict[str, Allocation] = {}
        self._waiting: set[str] = set()
        self._lock = asyncio.Lock()

    def request(self, tier: int, container_runtime: str | None = None) -> Request:
        return Request.for_tier(tier, self._limits, container_runtime)

    def seed(self, workspaces: Iterable[Mapping[str, Any]]) -> None:
        """Learn every placement the Workspaces' statuses record (at start-up, before any pass)."""
        touched: set[str] = set()
        for body in workspaces:
            uid = (body.get("metadata") or {}).get("uid")
            host = (body.get("status") or {}).get("host")
            if not uid or not isinstance(host, str) or not host:
                continue
            # The tier the last pass resolved the spec to (a template's, or the default), else the spec's.
            status_tier = (body.get("status") or {}).get("tier")
            tier = status_tier or (body.get("spec") or {}).get("tier", 2)
            if tier not in self._limits:
                tier = 2
            self._ledger[uid] = Allocation(host, self.request(tier))
            touched.add(host)
        for host in sorted(touched):
            self._on_change(host)

    def host_of(self, uid: str) -> str | None:
        allocation = self._ledger.get(uid)
        return allocation.host if allocation else None

    def record(self, uid: str, host: str, request: Request) -> None:
        """A pass found the Workspace on `host` (taking `request`, for the tier it asks now)."""
        self._waiting.discard(uid)
        before = self._ledger.get(uid)
        allocation = Allocation(host, request)
        if before == allocation:
            return
        self._ledger[uid] = allocation
        self._on_change(host)
        if before is not None and before.host != host:
            self._on_change(before.host)

    async def place(self, uid: str, request: Request, placement: Placement) -> Placed | Unschedulable:
        async with self._lock:
            known = self._ledger.get(uid)
            if known is not None:
                return Placed(known.host)
            result = place(request, placement, self.views())
            if isinstance(result, Placed):
                self.record(uid, result.host, request)
            else:
                self._waiting.add(uid)
            return result

    def release(self, uid: str) -> None:
        """The Workspace is gone: its room is free, and those waiting for room get another look."""
        self._waiting.discard(uid)
        allocation = self._ledger.pop(uid, None)
        if allocation is not None:
            self._on_change(allocation.host)
            self.wake_waiting()

    def wake_waiting(self) -> None:
        for uid in list(self._waiting):
            self._wake(uid)

    def uids_on(self, host: str) -> list[str]:
        return [uid for uid, allocation in self._ledger.items() if allocation.host == host]

    def load(self, host: str) -> HostLoad:
        return self.loads().get(host, HostLoad(Resources(), 0, {}))

    def loads(self) -> dict[str, HostLoad]:
        """What is placed on each host, in one pass over the ledger."""
        totals: dict[str, Resources] = {}
        tiers: dict[str, Counter[int]] = {}
        for allocation in self._ledger.values():
            totals[allocation.host] = totals.get(allocation.host, Resources()) + allocation.request.resources
            tiers.setdefault(allocation.host, Counter())[allocation.request.tier] += 1
        return {host: HostLoad(totals[host], sum(t.values()), dict(t)) for host, t in tiers.items()}

    def views(self) -> list[HostView]:
        views = []
        loads = self.loads()
        for host in self._hosts():
            load = loads.get(host.name, HostLoad(Resources(), 0, {}))
            views.append(
                HostView(
                    name=host.name,
                    labels=host.labels,
                    ready=host.ready,
                    unschedulable=host.unschedulable,
                    capacity=host.capacity(),
                    allocated=load.resources,
                    workspaces=load.workspaces,
                    host_network_taken=load.host_network_taken,
                    bounded=host.bounded,
                    runtimes=host.runtimes,
                )
            )
        return views
