"""The placement ledger: seeded from the Workspaces' statuses, sticky placements, what a host holds,
who is told when it changes (the host, for its status; the Workspaces waiting for room, for another look),
and that placements made at the same time never overfill a host."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.api.workspace import Placement
from controller.core.causes import Reason
from controller.core.placement import Placed, Request, Resources, Unschedulable
from controller.core.tiers import DEFAULT_TIER_LIMITS
from controller.reconcile.scheduler import Scheduler

ANYWHERE = Placement()
TIER1 = Request.for_tier(1, DEFAULT_TIER_LIMITS)  # 256 MiB, 0.5 CPU
TIER2 = Request.for_tier(2, DEFAULT_TIER_LIMITS)  # 512 MiB, 1 CPU
TIER3 = Request.for_tier(3, DEFAULT_TIER_LIMITS)  # 2048 MiB, 2 CPUs


@dataclass
class Target:
    """A host as the scheduler sees it (its PlacementTarget protocol)."""

    name: str
    room: Resources | None = field(default_factory=lambda: Resources(4.0, 4096))
    labels: Mapping[str, str] = field(default_factory=dict)
    ready: bool = True
    unschedulable: bool = False
    bounded: bool = True
    runtimes: frozenset[str] | None = None

    def capacity(self) -> Resources | None:
        return self.room


class Ledger:
    """A scheduler over hosts the test changes at will, recording whom it wakes and which hosts it says
    changed."""

    def __init__(self, *hosts: Target) -> None:
        self.hosts: list[Target] = list(hosts)
        self.woken: list[str] = []
        self.changed: list[str] = []
        self.scheduler = Scheduler(
            hosts=lambda: self.hosts,
            limits=DEFAULT_TIER_LIMITS,
            wake=self.woken.append,
            on_change=self.changed.append,
        )


def workspace_body(uid: str | None, host: Any, tier: Any = 1) -> dict[str, Any]:
    metadata = {"name": f"w-{uid}", "namespace": "ns"} | ({"uid": uid} if uid is not None else {})
    return {"metadata": metadata, "spec": {"tier": tier}, "status": {"host": host}}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- seed ----------------------------------------------------------------------------------------------


def test_seed_learns_each_placement_a_status_records() -> None:
    ledger = Ledger()
    ledger.scheduler.seed(
        [workspace_body("u1", "a", tier=1), workspace_body("u2", "b", tier=3), workspace_body("u3", "a")]
    )
    assert ledger.scheduler.host_of("u1") == "a"
    assert ledger.scheduler.host_of("u2") == "b"
    assert ledger.scheduler.host_of("u3") == "a"
    assert ledger.scheduler.load("a").by_tier == {1: 2}
    assert ledger.scheduler.load("b").resources == TIER3.resources


def test_seed_ignores_workspaces_without_uid_or_host() -> None:
    ledger = Ledger()
    bodies = [
        workspace_body(None, "a"),
        workspace_body("no-host", None),
        workspace_body("empty-host", ""),
        workspace_body("odd-host", 3),
        {"metadata": {"uid": "no-status"}, "spec": {"tier": 1}},
        {},
    ]
    ledger.scheduler.seed(bodies)
    assert all(ledger.scheduler.host_of(uid) is None for uid in ("no-host", "empty-host", "odd-host"))
    assert ledger.scheduler.host_of("no-status") is None
    assert ledger.scheduler.load("a").workspaces == 0
    assert ledger.changed == []


def test_seed_counts_an_unknown_or_missing_tier_as_tier_2() -> None:
    ledger = Ledger()
    missing_tier = {"metadata": {"uid": "none"}, "spec": {}, "status": {"host": "a"}}
    ledger.scheduler.seed(
        [workspace_body("nine", "a", tier=9), workspace_body("text", "a", tier="x"), missing_tier]
    )
    load = ledger.scheduler.load("a")
    assert load.by_tier == {2: 3}
    assert load.resources == Resources(3 * TIER2.resources.cpus, 3 * TIER2.resources.memory_mib)


def test_seed_takes_the_tier_the_status_says_the_spec_resolved_to() -> None:
    ledger = Ledger()
    templated = {
        "metadata": {"uid": "t"},
        "spec": {"templateRef": {"name": "x"}},
        "status": {"host": "a", "tier": 4},
    }
    ledger.scheduler.seed([templated])
    assert ledger.scheduler.load("a").by_tier == {4: 1}


def test_seed_tells_each_host_it_touched_once() -> None:
    ledger = Ledger()
    ledger.scheduler.seed(
        [
            workspace_body("u1", "b"),
            workspace_body("u2", "a"),
            workspace_body("u3", "b"),
            workspace_body(None, "c"),
        ]
    )
    assert sorted(ledger.changed) == ["a", "b"]


def test_a_seeded_workspace_is_not_placed_again() -> None:
    async def scenario() -> None:
        ledger = Ledger(Target("a"), Target("b"))
        ledger.scheduler.seed([workspace_body("u1", "b")])
        assert await ledger.scheduler.place("u1", TIER1, ANYWHERE) == Placed("b")
        assert ledger.scheduler.load("b").workspaces == 1
        assert ledger.scheduler.load("a").workspaces == 0

    run(scenario())


# --- place ---------------------------------------------------------------------------------------------


def test_place_records_the_placement_and_tells_the_host() -> None:
    async def scenario() -> None:
        ledger = Ledger(Target("a"))
        assert await ledger.scheduler.place("u1", TIER2, ANYWHERE) == Placed("a")
        assert ledger.scheduler.host_of("u1") == "a"
        assert ledger.scheduler.uids_on("a") == ["u1"]
        assert ledger.changed == ["a"]

    run(scenario())


def test_place_spreads_over_the_hosts() -> None:
    async def scenario() -> None:
        ledger = Ledger(Target("a"), Target("b"))
        hosts = [await ledger.scheduler.place(f"u{i}", TIER2, ANYWHERE) for i in range(4)]
        assert hosts == [Placed("a"), Placed("b"), Placed("a"), Placed("b")]

    run(scenario())


def test_place_is_sticky_even_when_another_host_is_now_emptier() -> None:
    async def scenario() -> None:
        ledger = Ledger(Target("a"))
        assert await ledger.scheduler.place("u1", TIER2, ANYWHERE) == Placed("a")
        ledger.hosts.append(Target("b", room=Resources(64.0, 65536)))
        assert await ledger.scheduler.place("u1", TIER2, ANYWHERE) == Placed("a")
        # Not counted twice, and nothing taken on b.
        assert ledger.scheduler.load("a").workspaces == 1
        assert ledger.scheduler.load("b").workspaces == 0
        assert ledger.changed == ["a"]

    run(scenario())


def test_place_is_sticky_even_when_the_host_has_gone_silent() -> None:
    async def scenario() -> None:
        a = Target("a")
        ledger = Ledger(a, Target("b"))
        await ledger.scheduler.place("u1", TIER2, ANYWHERE)
        a.ready = False
        assert await ledger.scheduler.place("u1", TIER2, ANYWHERE) == Placed("a")

    run(scenario())


def test_place_counts_what_is_already_there() -> None:
    async def scenario() -> None:
        ledger = Ledger(Target("a", room=Resources(4.0, 1024)))
        assert await ledger.scheduler.place("u1", TIER2, ANYWHERE) == Placed("a")
        assert await ledger.scheduler.place("u2", TIER2, ANYWHERE) == Placed("a")
        result = await ledger.scheduler.place("u3", TIER2, ANYWHERE)
        assert isinstance(result, Unschedulable)
        assert result.cause.reason == Reason.UNSCHEDULABLE
        assert "a has only 0 MiB free" in result.cause.message

    run(scenario())


def test_an_unschedulable_workspace_is_not_recorded_and_waits() -> None:
    async def scenario() -> None:
        ledger = Ledger(Target("a", room=Resources(4.0, 256)))
        result = await ledger.scheduler.place("big", TIER3, ANYWHERE)
        assert isinstance(result, Unschedulable)
        assert ledger.scheduler.host_of("big") is None
        assert ledger.scheduler.load("a").workspaces == 0
        assert ledger.changed == []
        ledger.scheduler.wake_waiting()
        assert ledger.woken == ["big"]

    run(scenario())


def test_place_respects_the_placement_asked() -> None:
    async def scenario() -> None:
        ledger = Ledger(Target("a"), Target("b", labels={"zone": "y"}))
        pinned = Placement.model_validate({"host": "b"})
        selected = Placement.model_validate({"hostSelector": {"matchLabels": {"zone": "y"}}})
        # Left to itself the scheduler would pick a both times (first by name, then as the emptier).
        assert await ledger.scheduler.place("p", TIER2, pinned) == Placed("b")
        assert await ledger.scheduler.place("s", TIER2, selected) == Placed("b")

    run(scenario())


def test_views_show_each_host_with_what_the_ledger_puts_there() -> None:
    async def scenario() -> None:
        ledger = Ledger(Target("a", labels={"k": "v"}, unschedulable=True, bounded=False), Target("b"))
        ledger.scheduler.record("u1", "a", Request.for_tier(4, DEFAULT_TIER_LIMITS))
        await ledger.scheduler.place("u2", TIER1, ANYWHERE)
        a, b = ledger.scheduler.views()
        assert (a.name, dict(a.labels), a.unschedulable, a.bounded) == ("a", {"k": "v"}, True, False)
        assert (a.allocated, a.workspaces, a.host_network_taken) == (Resources(4.0, 4096), 1, True)
        assert (b.name, b.allocated, b.workspaces, b.host_network_taken) == ("b", TIER1.resources, 1, False)
        assert b.capacity == Resources(4.0, 4096)

    run(scenario())


def test_concurrent_placements_never_overfill_a_host() -> None:
    async def scenario() -> None:
        fits = 5
        ledger = Ledger(Target("a", room=Resources(64.0, fits * TIER2.resources.memory_mib)))
        uids = [f"u{i}" for i in range(fits + 3)]
        results = await asyncio.gather(*(ledger.scheduler.place(uid, TIER2, ANYWHERE) for uid in uids))
        placed = [uid for uid, result in zip(uids, results, strict=True) if isinstance(result, Placed)]
        unschedulable = [r for r in results if isinstance(r, Unschedulable)]
        assert len(placed) == fits
        assert len(unschedulable) == 3
        assert ledger.scheduler.load("a").workspaces == fits
        assert ledger.scheduler.load("a").resources.memory_mib == fits * TIER2.resources.memory_mib
        ledger.scheduler.wake_waiting()
        assert sorted(ledger.woken) == sorted(set(uids) - set(placed))

    run(scenario())


def test_concurrent_placements_spread_over_hosts_without_overfilling_any() -> None:
    async def scenario() -> None:
        ledger = Ledger(*(Target(name, room=Resources(64.0, 1024)) for name in ("a", "b", "c")))
        results = await asyncio.gather(*(ledger.scheduler.place(f"u{i}", TIER1, ANYWHERE) for i in range(15)))
        assert sum(isinstance(r, Placed) for r in results) == 12
        for name in ("a", "b", "c"):
            assert ledger.scheduler.load(name).resources.memory_mib == 1024

    run(scenario())


# --- record --------------------------------------------------------------------------------------------


def test_record_tells_the_host_once_for_the_same_allocation() -> None:
    ledger = Ledger()
    ledger.scheduler.record("u1", "a", TIER1)
    ledger.scheduler.record("u1", "a", TIER1)
    assert ledger.changed == ["a"]
    assert ledger.scheduler.load("a").workspaces == 1


def test_record_of_a_new_tier_updates_what_the_workspace_takes() -> None:
    ledger = Ledger()
    ledger.scheduler.record("u1", "a", TIER1)
    ledger.scheduler.record("u1", "a", TIER3)
    assert ledger.changed == ["a", "a"]
    assert ledger.scheduler.load("a").by_tier == {3: 1}
    assert ledger.scheduler.load("a").resources == TIER3.resources


def test_record_of_a_move_tells_both_hosts() -> None:
    ledger = Ledger()
    ledger.scheduler.record("u1", "a", TIER1)
    ledger.changed.clear()
    ledger.scheduler.record("u1", "b", TIER1)
    assert sorted(ledger.changed) == ["a", "b"]
    assert ledger.scheduler.host_of("u1") == "b"
    assert ledger.scheduler.load("a").workspaces == 0
    assert ledger.scheduler.load("b").workspaces == 1


def test_a_recorded_workspace_no_longer_waits() -> None:
    async def scenario() -> None:
        ledger = Ledger(Target("a", room=Resources(4.0, 256)))
        assert isinstance(await ledger.scheduler.place("u1", TIER2, ANYWHERE), Unschedulable)
        ledger.scheduler.record("u1", "a", TIER2)
        ledger.scheduler.wake_waiting()
        assert ledger.woken == []

    run(scenario())


# --- release -------------------------------------------------------------------------------------------


def test_release_frees_the_room_tells_the_host_and_wakes_those_waiting() -> None:
    async def scenario() -> None:
        ledger = Ledger(Target("a", room=Resources(4.0, 512)))
        assert await ledger.scheduler.place("first", TIER2, ANYWHERE) == Placed("a")
        assert isinstance(await ledger.scheduler.place("w1", TIER2, ANYWHERE), Unschedulable)
        assert isinstance(await ledger.scheduler.place("w2", TIER1, ANYWHERE), Unschedulable)
        ledger.changed.clear()
        assert ledger.woken == []

        ledger.scheduler.release("first")
        assert ledger.scheduler.host_of("first") is None
        assert ledger.scheduler.load("a").workspaces == 0
        assert ledger.changed == ["a"]
        assert sorted(ledger.woken) == ["w1", "w2"]
        assert await ledger.scheduler.place("w1", TIER2, ANYWHERE) == Placed("a")

    run(scenario())


def test_a_released_waiting_workspace_is_woken_no_more() -> None:
    async def scenario() -> None:
        ledger = Ledger(Target("a", room=Resources(4.0, 256)))
        await ledger.scheduler.place("placed", TIER1, ANYWHERE)
        assert isinstance(await ledger.scheduler.place("gone", TIER1, ANYWHERE), Unschedulable)
        ledger.scheduler.release("gone")
        ledger.scheduler.release("placed")
        assert ledger.woken == []

    run(scenario())


def test_releasing_an_unknown_workspace_changes_nothing_and_wakes_nobody() -> None:
    async def scenario() -> None:
        ledger = Ledger(Target("a", room=Resources(4.0, 256)))
        await ledger.scheduler.place("placed", TIER1, ANYWHERE)
        assert isinstance(await ledger.scheduler.place("waiting", TIER1, ANYWHERE), Unschedulable)
        ledger.changed.clear()
        ledger.scheduler.release("stranger")
        assert ledger.changed == []
        assert ledger.woken == []
        assert ledger.scheduler.load("a").workspaces == 1

    run(scenario())


# --- load ----------------------------------------------------------------------------------------------


def test_load_sums_what_each_host_holds_by_tier() -> None:
    ledger = Ledger()
    ledger.scheduler.record("u1", "a", TIER1)
    ledger.scheduler.record("u2", "a", TIER1)
    ledger.scheduler.record("u3", "a", TIER3)
    ledger.scheduler.record("u4", "b", TIER2)
    a = ledger.scheduler.load("a")
    assert a.resources == Resources(2 * 0.5 + 2.0, 2 * 256 + 2048)
    assert a.workspaces == 3
    assert a.by_tier == {1: 2, 3: 1}
    assert not a.host_network_taken
    b = ledger.scheduler.load("b")
    assert (b.resources, b.workspaces, b.by_tier) == (TIER2.resources, 1, {2: 1})


def test_a_host_with_nothing_placed_has_no_load() -> None:
    load = Ledger().scheduler.load("empty")
    assert (load.resources, load.workspaces, dict(load.by_tier)) == (Resources(), 0, {})


def test_a_tier_4_workspace_takes_the_host_network() -> None:
    ledger = Ledger()
    ledger.scheduler.record("u1", "a", Request.for_tier(4, DEFAULT_TIER_LIMITS))
    assert ledger.scheduler.load("a").host_network_taken
