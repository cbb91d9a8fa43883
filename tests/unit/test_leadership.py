"""The leader elector against an in-memory Lease store, in simulated time.

Each elector is driven one `step()` at a time by `Simulation`, which advances a `FakeClock` to the
earliest step due (the delay each step returned), as `run()` would sleep. After every step it checks the
property that matters: never two leaders at once. Callbacks record the simulated time they fired at, and
the store records when each write landed, so tests can hold the timing to client-go's promises:

- a leader that cannot renew stops `renew_deadline` after its last renewal at the latest;
- a standby takes over only `lease_duration` after it last saw the Lease change.

A few tests use the real clock with sub-second deadlines to show an attempt hanging in a call is cut off;
they wait for the deadline under test, never to let something happen.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from controller.core.leader import LeaseRecord
from controller.kube.client import ApiError
from controller.reconcile import leadership
from controller.reconcile.leadership import LeaderElector
from tests.support.fake_lease import FakeLeaseApi, FakeLeaseStore

NS, LEASE = "workspace-controller", "workspace-controller-leader"
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 15.0, 10.0, 2.0
START = 1000.0
EPOCH = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)
UNREACHABLE = ApiError(0, "Unreachable", "connection refused")
DEADLINE = 5.0
"""Real seconds within which something that must happen does."""


class FakeClock:
    """Monotonic seconds that move only when a test moves them; `wall` is the matching wall clock."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def wall(self, skew: timedelta = timedelta(0)) -> datetime:
        return EPOCH + timedelta(seconds=self.now - START) + skew


@dataclass
class Replica:
    """One elector under test, its own API client on the shared store, and what its callbacks saw."""

    elector: LeaderElector
    api: FakeLeaseApi
    started: list[float] = field(default_factory=list)
    stopped: list[float] = field(default_factory=list)
    writes_when_stopped: list[int] = field(default_factory=list)
    """How many writes the store had taken when each stopped callback ran."""

    @property
    def identity(self) -> str:
        return self.elector.identity


@dataclass
class Cluster:
    clock: FakeClock
    store: FakeLeaseStore

    def replica(self, identity: str, *, skew: timedelta = timedelta(0), **overrides: Any) -> Replica:
        """An elector with the default timing and recording callbacks; `overrides` replace any of them."""
        replica = Replica(cast(LeaderElector, None), self.store.client(identity))

        def stopped() -> None:
            replica.stopped.append(self.clock.now)
            replica.writes_when_stopped.append(len(self.store.writes))

        options: dict[str, Any] = {
            "lease_duration": LEASE_DURATION,
            "renew_deadline": RENEW_DEADLINE,
            "retry_period": RETRY_PERIOD,
            "clock": self.clock,
            "wall_clock": lambda: self.clock.wall(skew),
            "on_started_leading": lambda: replica.started.append(self.clock.now),
            "on_stopped_leading": stopped,
        }
        options.update(overrides)
        replica.elector = LeaderElector(replica.api, namespace=NS, name=LEASE, identity=identity, **options)
        return replica

    def record(self) -> LeaseRecord | None:
        return self.store.record(NS, LEASE)

    def last_write_by(self, replica: Replica) -> float:
        return self.store.writes_by(replica.identity)[-1].at


def new_cluster() -> Cluster:
    clock = FakeClock()
    return Cluster(clock, FakeLeaseStore(clock))


class Simulation:
    """Steps electors in simulated time, each when the delay its last step returned has passed."""

    def __init__(self, cluster: Cluster, *replicas: Replica, offsets: tuple[float, ...] = ()) -> None:
        self.clock = cluster.clock
        self.replicas = replicas
        self.due = {
            r.identity: self.clock.now + (offsets[i] if i < len(offsets) else 0.0)
            for i, r in enumerate(replicas)
        }

    async def run_until(self, end: float, *, stop: Callable[[], bool] = lambda: False) -> None:
        while not stop():
            replica = min(self.replicas, key=lambda r: self.due[r.identity])
            at = self.due[replica.identity]
            if at > end:
                self.clock.now = max(self.clock.now, end)
                return
            self.clock.now = max(self.clock.now, at)
            delay = await replica.elector.step()
            assert delay > 0, "a step asked to run again at once: a busy loop"
            self.due[replica.identity] = self.clock.now + delay
            leaders = [r.identity for r in self.replicas if r.elector.is_leader]
            assert len(leaders) <= 1, f"two leaders at {self.clock.now}: {leaders}"


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), DEADLINE))


# --- acquiring and holding ------------------------------------------------------------------------


def test_a_single_elector_creates_the_lease_and_leads() -> None:
    async def scenario() -> None:
        cluster = new_cluster()
        a = cluster.replica("a")

        delay = await a.elector.step()

        assert a.elector.is_leader
        await asyncio.wait_for(a.elector.until_leading(), DEADLINE)
        assert a.started == [START]
        assert delay == RETRY_PERIOD
        assert cluster.record() == LeaseRecord("a", 15, cluster.clock.wall(), cluster.clock.wall(), 0)
        assert a.api.calls == ["get", "create"]

    run(scenario)


def test_a_leader_renews_every_retry_period_and_keeps_its_claim() -> None:
    async def scenario() -> None:
        cluster = new_cluster()
        a = cluster.replica("a")
        await Simulation(cluster, a).run_until(START + 60)

        writes = cluster.store.writes_by("a")
        assert [w.at - START for w in writes] == [2.0 * i for i in range(31)]
        record = cluster.record()
        assert record is not None
        assert record.acquire_time == EPOCH
        assert record.renew_time == cluster.clock.wall()
        assert record.lease_transitions == 0
        assert (a.started, a.stopped) == ([START], [])

    run(scenario)


def test_a_second_elector_stands_by_while_the_first_renews() -> None:
    async def scenario() -> None:
        cluster = new_cluster()
        a, b = cluster.replica("a"), cluster.replica("b")
        await Simulation(cluster, a, b, offsets=(0, 0.7)).run_until(START + 300)

        assert a.elector.is_leader
        assert not b.elector.is_leader
        assert (a.started, a.stopped, b.started, b.stopped) == ([START], [], [], [])
        assert cluster.store.writes_by("b") == []
        # Standing by costs one read per retry period, no writes.
        assert b.api.calls == ["get"] * 150

    run(scenario)


def test_a_restarted_replica_finds_its_own_lease_and_renews_it() -> None:
    async def scenario() -> None:
        cluster = new_cluster()
        acquired = EPOCH - timedelta(hours=2)
        cluster.store.put(NS, LEASE, LeaseRecord("a", 15, acquired, acquired, 3))
        a = cluster.replica("a")

        await a.elector.step()

        assert a.elector.is_leader
        assert cluster.record() == LeaseRecord("a", 15, acquired, cluster.clock.wall(), 3)

    run(scenario)


# --- a leader that cannot renew -------------------------------------------------------------------


@pytest.mark.parametrize("standby_offset", [0.0, 0.7, 1.99])
@pytest.mark.parametrize("fails_at", [20.0, 21.0, 23.5])
def test_a_leader_that_cannot_renew_stops_before_the_standby_takes_over(
    standby_offset: float, fails_at: float
) -> None:
    async def scenario() -> None:
        cluster = new_cluster()
        a, b = cluster.replica("a"), cluster.replica("b")
        sim = Simulation(cluster, a, b, offsets=(0, standby_offset))
        await sim.run_until(START + fails_at)
        a.api.failure = UNREACHABLE

        await sim.run_until(START + 100)

        last_renewal = cluster.last_write_by(a)
        assert a.started == [START]
        assert len(a.stopped) == 1
        assert len(b.started) == 1
        # The leader gives up within the renew deadline of its last renewal...
        assert a.stopped[0] <= last_renewal + RENEW_DEADLINE
        # ...the standby waits a whole lease duration after it saw that renewal (no earlier than it was
        # written), and takes over at its first try after that.
        # It sees a renewal at its next try at the latest.
        assert (
            last_renewal + LEASE_DURATION < b.started[0] <= last_renewal + LEASE_DURATION + 2 * RETRY_PERIOD
        )
        assert b.started[0] - a.stopped[0] >= LEASE_DURATION - RENEW_DEADLINE
        record = cluster.record()
        assert record is not None
        assert (record.holder, record.lease_transitions) == ("b", 1)
        assert not a.elector.is_leader

    run(scenario)


def test_the_standby_counts_the_duration_from_when_it_first_saw_the_lease() -> None:
    """a renews for the last time at START; b first looks 5 s later and has seen no change since: it
    waits until START + 5 + 15, not START + 15, whatever renewTime says."""

    async def scenario() -> None:
        cluster = new_cluster()
        a = cluster.replica("a")
        await a.elector.step()
        a.api.failure = UNREACHABLE
        b = cluster.replica("b")
        cluster.clock.now = START + 5

        await Simulation(cluster, b).run_until(START + 100, stop=lambda: b.elector.is_leader)

        assert b.started == [START + 5 + 16]  # the first try strictly after START + 5 + 15

    run(scenario)


@pytest.mark.parametrize("skew", [timedelta(hours=-1), timedelta(hours=1)], ids=["behind", "ahead"])
def test_a_leader_with_a_skewed_wall_clock_is_neither_cut_short_nor_kept_forever(skew: timedelta) -> None:
    async def scenario() -> None:
        cluster = new_cluster()
        a, b = cluster.replica("a", skew=skew), cluster.replica("b")
        sim = Simulation(cluster, a, b, offsets=(0, 1))
        await sim.run_until(START + 120)
        assert (a.elector.is_leader, b.started) == (True, [])

        a.api.failure = UNREACHABLE
        await sim.run_until(START + 240)

        assert b.elector.is_leader
        assert b.started[0] <= cluster.last_write_by(a) + LEASE_DURATION + 2 * RETRY_PERIOD

    run(scenario)


def test_a_leader_whose_call_hangs_is_cut_off_at_its_deadline() -> None:
    """Real time, sub-second deadline: the renewal hangs; the step still ends at the deadline."""

    async def scenario() -> None:
        stopped: list[float] = []
        api = FakeLeaseStore(time.monotonic).client("a")
        elector = LeaderElector(
            api,
            namespace=NS,
            name=LEASE,
            identity="a",
            lease_duration=1,
            renew_deadline=0.2,
            retry_period=0.05,
            on_stopped_leading=lambda: stopped.append(time.monotonic()),
        )
        await elector.step()
        renewed = api.store.writes[-1].at
        api.hanging = True

        delays = [await elector.step() for _ in range(5) if elector.is_leader]

        assert not elector.is_leader
        assert len(stopped) == 1
        assert 0.2 - 0.01 <= stopped[0] - renewed <= 0.2 + 0.1
        assert all(d > 0 for d in delays)

    run(scenario)


def test_a_candidate_whose_call_hangs_gives_up_after_the_renew_deadline() -> None:
    async def scenario() -> None:
        api = FakeLeaseStore(time.monotonic).client("a")
        api.hanging = True
        elector = LeaderElector(
            api,
            namespace=NS,
            name=LEASE,
            identity="a",
            lease_duration=1,
            renew_deadline=0.1,
            retry_period=0.05,
        )
        started = time.monotonic()

        assert await elector.step() == 0.05
        assert 0.1 - 0.01 <= time.monotonic() - started < 1
        assert not elector.is_leader

    run(scenario)


def test_a_leader_that_sees_someone_else_in_the_lease_stops_at_once() -> None:
    async def scenario() -> None:
        cluster = new_cluster()
        a = cluster.replica("a")
        await a.elector.step()
        cluster.store.put(NS, LEASE, LeaseRecord("intruder", 15, EPOCH, EPOCH, 1))
        cluster.clock.now += RETRY_PERIOD

        await a.elector.step()

        assert not a.elector.is_leader
        assert a.stopped == [START + RETRY_PERIOD]
        await asyncio.wait_for(a.elector.until_not_leading(), DEADLINE)

    run(scenario)


# --- failures are attempts, logged once --------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [UNREACHABLE, ApiError(500, "InternalError", "etcd"), ApiError(403, "Forbidden", "no RBAC for leases")],
    ids=["unreachable", "server-error", "forbidden"],
)
def test_api_errors_are_failed_attempts_never_crashes(error: ApiError) -> None:
    async def scenario() -> None:
        cluster = new_cluster()
        a = cluster.replica("a")
        a.api.failure = error
        await Simulation(cluster, a).run_until(START + 30)
        assert not a.elector.is_leader

        a.api.failure = None
        await Simulation(cluster, a).run_until(START + 32)
        assert a.elector.is_leader

    run(scenario)


def test_failures_are_logged_when_they_start_and_end_not_per_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        cluster = new_cluster()
        a = cluster.replica("a")
        sim = Simulation(cluster, a)
        await sim.run_until(START + 10)
        a.api.failure = UNREACHABLE
        await sim.run_until(START + 120)  # 55 failed attempts, leadership lost on the way
        a.api.failure = None
        await sim.run_until(START + 130)
        a.api.failure = UNREACHABLE
        await sim.run_until(START + 140)

    caplog.set_level(logging.DEBUG, logger=leadership.__name__)
    run(scenario)

    ours = [r for r in caplog.records if r.name == leadership.__name__ and r.levelno >= logging.INFO]
    warnings = [r.getMessage() for r in ours if r.levelno == logging.WARNING]
    assert len(warnings) == 4, warnings  # failing, stopped leading, failing again, stopped leading again
    assert sum("attempt failed" in w for w in warnings) == 2
    assert sum("stopped leading" in w for w in warnings) == 2
    assert sum("answers again" in r.getMessage() for r in ours) == 1
    assert len(ours) <= 8


# --- write races ----------------------------------------------------------------------------------


def test_two_candidates_creating_the_lease_at_once_one_wins_the_other_stands_by(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        cluster = new_cluster()
        a, b = cluster.replica("a"), cluster.replica("b")

        async def b_gets_in_first() -> None:
            await b.elector.step()

        a.api.before_write = b_gets_in_first
        await a.elector.step()

        assert (a.elector.is_leader, b.elector.is_leader) == (False, True)
        assert a.api.calls == ["get", "create"]
        record = cluster.record()
        assert record is not None
        assert record.holder == "b"

        await Simulation(cluster, a, b).run_until(START + 60)
        assert (a.started, b.started, b.stopped) == ([], [START], [])

    caplog.set_level(logging.WARNING, logger=leadership.__name__)
    run(scenario)
    assert [r for r in caplog.records if r.name == leadership.__name__] == []


def test_two_candidates_taking_an_expired_lease_count_one_transition() -> None:
    async def scenario() -> None:
        cluster = new_cluster()
        dead = cluster.replica("dead")
        await dead.elector.step()
        dead.api.failure = UNREACHABLE
        a, b = cluster.replica("a"), cluster.replica("b")
        await a.elector.step()
        await b.elector.step()  # both have now seen the dead holder's last renewal
        cluster.clock.now += LEASE_DURATION + 1

        async def b_takes_it_meanwhile() -> None:
            await b.elector.step()

        a.api.before_write = b_takes_it_meanwhile
        await a.elector.step()

        assert (a.elector.is_leader, b.elector.is_leader) == (False, True)
        record = cluster.record()
        assert record is not None
        assert (record.holder, record.lease_transitions) == ("b", 1)

    run(scenario)


def test_a_leader_whose_renewal_conflicts_stays_leader_and_renews_next_time() -> None:
    async def scenario() -> None:
        cluster = new_cluster()
        a = cluster.replica("a")
        await a.elector.step()

        async def someone_edits_a_label() -> None:
            cluster.store.touch(NS, LEASE)

        a.api.before_write = someone_edits_a_label
        cluster.clock.now += RETRY_PERIOD
        delay = await a.elector.step()
        assert a.elector.is_leader
        assert len(cluster.store.writes_by("a")) == 1
        assert delay == RETRY_PERIOD

        cluster.clock.now += delay
        await a.elector.step()
        assert len(cluster.store.writes_by("a")) == 2
        assert (a.started, a.stopped) == ([START], [])

    run(scenario)


def test_after_failed_renewals_a_leader_is_stepped_exactly_at_its_deadline() -> None:
    async def scenario() -> None:
        cluster = new_cluster()
        a = cluster.replica("a", retry_period=3.0)
        await a.elector.step()
        a.api.failure = UNREACHABLE
        delays = []
        while not a.stopped:
            cluster.clock.now += (delay := await a.elector.step())
            delays.append(delay)

        # Renewals fail at +0, +3, +6 and +9; the step due at +10 is the deadline, where it stops.
        assert delays == [3.0, 3.0, 3.0, 1.0, 3.0]
        assert a.stopped == [START + RENEW_DEADLINE]

    run(scenario)


def test_is_leader_turns_false_at_the_deadline_even_before_the_step_reporting_it() -> None:
    """A step can be late (a busy event loop); whoever asks `is_leader` meanwhile is told the truth."""

    async def scenario() -> None:
        cluster = new_cluster()
        a = cluster.replica("a")
        await a.elector.step()

        cluster.clock.now = START + RENEW_DEADLINE - 0.001
        assert a.elector.is_leader
        cluster.clock.now = START + RENEW_DEADLINE
        assert not a.elector.is_leader
        assert a.stopped == []  # reported by the next step

        a.api.failure = UNREACHABLE
        await a.elector.step()
        assert a.stopped == [START + RENEW_DEADLINE]

    run(scenario)


# --- release --------------------------------------------------------------------------------------


def test_release_frees_the_lease_and_the_standby_takes_it_at_its_next_try() -> None:
    async def scenario() -> None:
        cluster = new_cluster()
        a, b = cluster.replica("a"), cluster.replica("b")
        sim = Simulation(cluster, a, b, offsets=(0, 1))
        await sim.run_until(START + 30)
        writes_before = len(cluster.store.writes)

        await a.elector.release()

        assert not a.elector.is_leader
        record = cluster.record()
        assert record == LeaseRecord("", 1, cluster.clock.wall(), cluster.clock.wall(), 0)
        # Stopped before the release was written, not after.
        assert a.writes_when_stopped == [writes_before]
        assert len(cluster.store.writes) == writes_before + 1

        await b.elector.step()
        assert b.elector.is_leader
        assert b.started == [START + 30]
        record = cluster.record()
        assert record is not None
        assert (record.holder, record.lease_transitions) == ("b", 1)

        calls = len(a.api.calls)
        await a.elector.step()
        assert len(a.api.calls) == calls  # released for good

    run(scenario)


def test_an_async_stopped_callback_finishes_before_the_release_is_written() -> None:
    async def scenario() -> None:
        cluster = new_cluster()
        seen: list[str] = []

        async def stop_the_work() -> None:
            for _ in range(3):
                await asyncio.sleep(0)
            record = cluster.record()
            seen.append(f"work stopped, holder {record.holder if record else None!r}")

        a = cluster.replica("a", on_stopped_leading=stop_the_work)
        await a.elector.step()

        await a.elector.release()

        assert seen == ["work stopped, holder 'a'"]
        record = cluster.record()
        assert record is not None
        assert record.holder == ""

    run(scenario)


def test_release_of_a_standby_writes_nothing() -> None:
    async def scenario() -> None:
        cluster = new_cluster()
        a, b = cluster.replica("a"), cluster.replica("b")
        await a.elector.step()
        await b.elector.step()

        await b.elector.release()

        assert cluster.record() == LeaseRecord("a", 15, EPOCH, EPOCH, 0)
        assert b.api.calls == ["get"]

    run(scenario)


def test_a_release_that_fails_is_logged_and_the_lease_left_to_expire(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        cluster = new_cluster()
        a = cluster.replica("a")
        await a.elector.step()
        a.api.failure = UNREACHABLE

        await a.elector.release()

        assert (a.elector.is_leader, a.stopped) == (False, [START])
        record = cluster.record()
        assert record is not None
        assert record.holder == "a"

    run(scenario)
    assert any("could not release" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_a_leader_that_lost_at_its_deadline_still_releases_the_lease_naming_it() -> None:
    """Its last renewal may have landed though the answer never came: the Lease still names it."""

    async def scenario() -> None:
        cluster = new_cluster()
        a = cluster.replica("a")
        await a.elector.step()
        a.api.failure = UNREACHABLE
        cluster.clock.now += RENEW_DEADLINE
        await a.elector.step()
        assert not a.elector.is_leader
        a.api.failure = None

        await a.elector.release()

        record = cluster.record()
        assert record is not None
        assert record.holder == ""
        assert len(a.stopped) == 1

    run(scenario)


# --- run() ----------------------------------------------------------------------------------------


class ParkingSleep:
    """`run()`'s sleep: advances the fake clock by the delay asked for; after `limit` sleeps it parks
    (forever, until cancelled), so the loop stops where the test can look at it."""

    def __init__(self, clock: FakeClock, limit: int) -> None:
        self.clock = clock
        self.limit = limit
        self.delays: list[float] = []
        self.parked = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if len(self.delays) >= self.limit:
            self.parked.set()
            await asyncio.Event().wait()
        self.clock.now += seconds


def test_run_leads_then_release_ends_it_and_hands_the_lease_over() -> None:
    async def scenario() -> None:
        cluster = new_cluster()
        sleep = ParkingSleep(cluster.clock, limit=10)
        a = cluster.replica("a", sleep=sleep)
        running = asyncio.create_task(a.elector.run())

        await asyncio.wait_for(a.elector.until_leading(), DEADLINE)
        await asyncio.wait_for(sleep.parked.wait(), DEADLINE)
        assert sleep.delays == [RETRY_PERIOD] * 10
        assert a.api.calls == ["get", "create"] + ["get", "replace"] * 9

        await a.elector.release()

        assert running.done()
        assert not running.cancelled()
        assert running.exception() is None
        assert (a.started, a.stopped) == ([START], [START + 9 * RETRY_PERIOD])
        record = cluster.record()
        assert record is not None
        assert record.holder == ""

    run(scenario)


def test_run_against_an_unreachable_api_waits_a_retry_period_between_attempts() -> None:
    async def scenario() -> None:
        cluster = new_cluster()
        sleep = ParkingSleep(cluster.clock, limit=50)
        a = cluster.replica("a", sleep=sleep)
        a.api.failure = UNREACHABLE
        running = asyncio.create_task(a.elector.run())

        await asyncio.wait_for(sleep.parked.wait(), DEADLINE)

        assert sleep.delays == [RETRY_PERIOD] * 50
        assert a.api.calls == ["get"] * 50
        running.cancel()
        await asyncio.wait([running])

    run(scenario)


def test_cancelling_run_stops_leading_without_releasing() -> None:
    async def scenario() -> None:
        cluster = new_cluster()
        sleep = ParkingSleep(cluster.clock, limit=1)
        a = cluster.replica("a", sleep=sleep)
        running = asyncio.create_task(a.elector.run())
        await asyncio.wait_for(sleep.parked.wait(), DEADLINE)

        running.cancel()
        await asyncio.wait([running])

        assert (a.elector.is_leader, a.started, a.stopped) == (False, [START], [START])
        record = cluster.record()
        assert record is not None
        assert record.holder == "a"

    run(scenario)


# --- callbacks and construction -------------------------------------------------------------------


def test_a_failing_callback_is_logged_and_leadership_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    def explode() -> None:
        raise RuntimeError("callback bug")

    async def scenario() -> None:
        cluster = new_cluster()
        a = cluster.replica("a", on_started_leading=explode)
        await Simulation(cluster, a).run_until(START + 10)
        assert a.elector.is_leader

    run(scenario)
    assert any(r.exc_info and "on_started_leading" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        pytest.param(
            {"renew_deadline": 15.0}, "shorter than lease_duration", id="deadline-not-below-duration"
        ),
        pytest.param({"retry_period": 10.0}, "shorter than renew_deadline", id="retry-not-below-deadline"),
        pytest.param({"lease_duration": 15.5}, "whole seconds", id="fractional-duration"),
        pytest.param({"identity": ""}, "must not be empty", id="empty-identity"),
    ],
)
def test_unsafe_settings_are_refused(kwargs: dict[str, object], complaint: str) -> None:
    settings: dict[str, object] = {"namespace": NS, "name": LEASE, "identity": "a", **kwargs}
    with pytest.raises(ValueError, match=complaint):
        LeaderElector(FakeLeaseStore().client("a"), **settings)  # type: ignore[arg-type]
