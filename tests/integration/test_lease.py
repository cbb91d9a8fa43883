"""Leader election against a real kube-apiserver: two electors race on one Lease.

The control plane is the session's (tests/conftest.py); the electors talk to it as cluster admin through
`KubeClient`, each with a client of its own, as two replicas would. Timing is shortened (a 2 s lease) so
the hand-overs take seconds. The electors are sampled every few milliseconds while they run: never two
leaders at a sampled moment, and exactly one while the leader is left alone. Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from controller.kube.client import KubeClient
from controller.kube.lease import LeaseClient
from controller.reconcile.leadership import LeaderElector
from tests.support.stack import ControlPlane

NAMESPACE = "default"
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 2, 1.0, 0.1
SAMPLE = 0.005
"""Seconds between two looks at who leads."""
DEADLINE = 30.0


@pytest.fixture
def admin_kubeconfig(control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(control_plane.admin_kubeconfig))


@dataclass(frozen=True)
class Race:
    electors: list[LeaderElector]
    runs: list[asyncio.Task[None]]
    """Each elector's `run()`, in the same order."""
    leases: LeaseClient
    """A client of its own, to read the Lease as it is in the API server."""
    name: str

    async def lease_holder(self) -> tuple[str, int]:
        lease = await self.leases.get_lease(NAMESPACE, self.name)
        assert lease is not None
        return lease.record.holder, lease.record.lease_transitions


@asynccontextmanager
async def replicas(count: int) -> AsyncIterator[Race]:
    """`count` electors on a fresh Lease, running; released and closed afterwards."""
    name = f"wc-it-{uuid.uuid4().hex[:10]}"
    clients = [KubeClient.from_environment(timeout=5.0) for _ in range(count + 1)]
    electors = [
        LeaderElector(
            LeaseClient(client),
            namespace=NAMESPACE,
            name=name,
            identity=f"replica-{i}",
            lease_duration=LEASE_DURATION,
            renew_deadline=RENEW_DEADLINE,
            retry_period=RETRY_PERIOD,
        )
        for i, client in enumerate(clients[:count])
    ]
    tasks = [asyncio.create_task(elector.run()) for elector in electors]
    try:
        yield Race(electors, tasks, LeaseClient(clients[-1]), name)
    finally:
        for elector in electors:
            await elector.release()
        await asyncio.wait(tasks)
        for task in tasks:
            assert task.cancelled() or task.exception() is None
        for client in clients:
            await client.close()


async def watch(electors: list[LeaderElector], until: Callable[[], bool], *, exactly_one: bool) -> float:
    """Sample who leads until `until()` holds; returns how long that took. Fails on two leaders at once
    (or, with `exactly_one`, on none), or when `until` does not hold within DEADLINE seconds."""
    started = time.monotonic()
    while not until():
        leaders = [e.identity for e in electors if e.is_leader]
        assert len(leaders) <= 1, f"two leaders at once: {leaders}"
        if exactly_one:
            assert len(leaders) == 1, "nobody leads while the leader is left alone"
        assert time.monotonic() - started < DEADLINE, "did not happen in time"
        await asyncio.sleep(SAMPLE)
    return time.monotonic() - started


async def test_two_electors_race_one_leads_and_release_hands_over_at_once(admin_kubeconfig: None) -> None:
    async with replicas(2) as race:
        electors = race.electors
        await watch(electors, lambda: any(e.is_leader for e in electors), exactly_one=False)
        first = next(e for e in electors if e.is_leader)
        second = next(e for e in electors if e is not first)

        # Left alone for several lease durations, the leader keeps it and the other stands by.
        until = time.monotonic() + 3 * LEASE_DURATION
        await watch(electors, lambda: time.monotonic() > until, exactly_one=True)
        assert first.is_leader
        assert await race.lease_holder() == (first.identity, 0)

        await first.release()
        took = await watch(electors, lambda: second.is_leader, exactly_one=False)

        assert took < LEASE_DURATION / 2  # at its next try, not once the lease expired
        assert await race.lease_holder() == (second.identity, 1)


async def test_a_leader_that_stops_renewing_is_succeeded_after_the_lease_duration(
    admin_kubeconfig: None,
) -> None:
    async with replicas(2) as race:
        electors = race.electors
        await watch(electors, lambda: any(e.is_leader for e in electors), exactly_one=False)
        first = next(e for e in electors if e.is_leader)
        second = next(e for e in electors if e is not first)
        until = time.monotonic() + LEASE_DURATION
        await watch(electors, lambda: time.monotonic() > until, exactly_one=True)

        # The leader hangs or dies: it stops renewing without releasing.
        running = race.runs[electors.index(first)]
        running.cancel()
        await asyncio.wait([running])
        assert not first.is_leader
        took = await watch(electors, lambda: second.is_leader, exactly_one=False)

        # The other saw the last renewal at most a retry period (and a round trip) after it was written,
        # and takes over at its first try once a lease duration has passed since.
        assert LEASE_DURATION - RETRY_PERIOD - 0.2 < took < LEASE_DURATION + 3 * RETRY_PERIOD + 1
        assert await race.lease_holder() == (second.identity, 1)
