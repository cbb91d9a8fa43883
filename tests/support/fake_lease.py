"""FakeLeaseStore and FakeLeaseApi: in-memory stand-ins for the API server's Leases and for `LeaseApi`.

The store plays the API server: Leases by (namespace, name), a resourceVersion bumped on every write, and
the optimistic concurrency of the real one (a create of an existing Lease, or a replace carrying a stale
resourceVersion, is a `LeaseConflict`). It logs every write with the time on the test's clock, so a test
can say when a holder last renewed.

Each elector gets its own `FakeLeaseApi` on the shared store, so one replica's calls can fail (`failure`),
hang (`hanging`) or be overtaken by another writer (`before_write`) while the others' work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from controller.core.leader import LeaseRecord
from controller.kube.client import ApiError
from controller.kube.lease import LeaseConflict, StoredLease

Key = tuple[str, str]


@dataclass(frozen=True)
class LeaseWrite:
    """One successful write: when (the store's clock), by which client, what record."""

    at: float
    by: str
    record: LeaseRecord


@dataclass
class FakeLeaseStore:
    clock: Callable[[], float] = lambda: 0.0
    leases: dict[Key, StoredLease] = field(default_factory=dict)
    writes: list[LeaseWrite] = field(default_factory=list)
    version: int = 0

    def client(self, name: str) -> FakeLeaseApi:
        """A `LeaseApi` on this store; `name` labels its writes in `writes`."""
        return FakeLeaseApi(self, name)

    def record(self, namespace: str, name: str) -> LeaseRecord | None:
        lease = self.leases.get((namespace, name))
        return lease.record if lease is not None else None

    def writes_by(self, name: str) -> list[LeaseWrite]:
        return [write for write in self.writes if write.by == name]

    def put(self, namespace: str, name: str, record: LeaseRecord, *, by: str = "outsider") -> StoredLease:
        """Store `record` unconditionally, as a writer other than the electors under test would."""
        self.version += 1
        stored = StoredLease(namespace, name, str(self.version), record)
        self.leases[(namespace, name)] = stored
        self.writes.append(LeaseWrite(self.clock(), by, record))
        return stored

    def touch(self, namespace: str, name: str) -> None:
        """A write that changes only the resourceVersion (someone edited a label): the record stays."""
        lease = self.leases[(namespace, name)]
        self.version += 1
        self.leases[(namespace, name)] = StoredLease(namespace, name, str(self.version), lease.record)


@dataclass
class FakeLeaseApi:
    """`LeaseApi` over a `FakeLeaseStore`, with faults a test switches on and off."""

    store: FakeLeaseStore
    name: str
    failure: ApiError | None = None
    """Raised by every call while set (status 0: unreachable)."""
    hanging: bool = False
    """Every call waits forever while set (until the caller's timeout cancels it)."""
    before_write: Callable[[], Awaitable[None]] | None = None
    """Awaited once, just before the next write is applied: lets another writer get in between."""
    calls: list[str] = field(default_factory=list)

    async def get_lease(self, namespace: str, name: str) -> StoredLease | None:
        await self._call("get")
        return self.store.leases.get((namespace, name))

    async def create_lease(
        self, namespace: str, name: str, record: LeaseRecord
    ) -> StoredLease | LeaseConflict:
        await self._call("create")
        await self._interleave()
        if (namespace, name) in self.store.leases:
            return LeaseConflict(f"leases {name} already exists")
        return self.store.put(namespace, name, record, by=self.name)

    async def replace_lease(self, current: StoredLease, record: LeaseRecord) -> StoredLease | LeaseConflict:
        await self._call("replace")
        await self._interleave()
        stored = self.store.leases.get((current.namespace, current.name))
        if stored is None or stored.resource_version != current.resource_version:
            return LeaseConflict(
                "the object has been modified; please apply your changes to the latest version"
            )
        return self.store.put(current.namespace, current.name, record, by=self.name)

    async def _call(self, what: str) -> None:
        self.calls.append(what)
        if self.failure is not None:
            raise self.failure
        if self.hanging:
            await asyncio.Event().wait()

    async def _interleave(self) -> None:
        hook, self.before_write = self.before_write, None
        if hook is not None:
            await hook()
