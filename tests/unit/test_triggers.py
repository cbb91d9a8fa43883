"""Wake-ups of the per-Workspace loops: coalesced, keyed by uid, with a one-shot "observe afresh" flag.

Timeouts here are deadlines for things that must happen, or the wait under test itself: no test sleeps to
let something happen.
"""

from __future__ import annotations

import asyncio

from controller.reconcile.triggers import Triggers

DEADLINE = 5.0
"""Seconds within which something that must happen does."""
NOTHING = 0.05
"""How long a wait is allowed to find nothing (the test's point is that it times out)."""


def test_waking_an_unregistered_uid_returns_false_and_wakes_nothing() -> None:
    triggers = Triggers()
    other = triggers.register("b")

    assert triggers.wake("a") is False
    assert triggers.wake("a", fresh_observation=True) is False
    assert not other.is_set()
    assert triggers.take_fresh_observation("a") is False
    assert len(triggers) == 1


def test_waking_a_registered_uid_returns_true() -> None:
    triggers = Triggers()
    event = triggers.register("a")

    assert triggers.wake("a") is True
    assert event.is_set()


def test_several_wakes_while_the_loop_is_busy_coalesce_into_one() -> None:
    async def scenario() -> None:
        triggers = Triggers()
        triggers.register("a")
        for _ in range(3):
            assert triggers.wake("a")

        assert await asyncio.wait_for(triggers.wait("a", DEADLINE), DEADLINE) is True
        # The three wakes were one: the next wait finds nothing pending.
        assert await triggers.wait("a", NOTHING) is False

    asyncio.run(scenario())


def test_a_wake_during_the_wait_ends_it() -> None:
    async def scenario() -> None:
        triggers = Triggers()
        triggers.register("a")
        waiting = asyncio.create_task(triggers.wait("a", DEADLINE))
        done, _ = await asyncio.wait({waiting}, timeout=NOTHING)
        assert not done  # it waits

        triggers.wake("a")

        assert await asyncio.wait_for(waiting, DEADLINE) is True

    asyncio.run(scenario())


def test_a_wait_without_a_wake_times_out_and_returns_false() -> None:
    async def scenario() -> None:
        triggers = Triggers()
        triggers.register("a")
        triggers.wake("b")  # someone else's wake does not count

        assert await asyncio.wait_for(triggers.wait("a", NOTHING), DEADLINE) is False

    asyncio.run(scenario())


def test_a_fresh_observation_is_taken_once() -> None:
    triggers = Triggers()
    triggers.register("a")
    triggers.register("b")

    assert triggers.take_fresh_observation("a") is False
    triggers.wake("a")
    assert triggers.take_fresh_observation("a") is False  # a plain wake does not ask for one

    triggers.wake("a", fresh_observation=True)
    triggers.wake("a", fresh_observation=True)
    assert triggers.take_fresh_observation("b") is False
    assert triggers.take_fresh_observation("a") is True
    assert triggers.take_fresh_observation("a") is False


def test_a_fresh_observation_survives_a_later_plain_wake() -> None:
    triggers = Triggers()
    triggers.register("a")

    triggers.wake("a", fresh_observation=True)
    triggers.wake("a")

    assert triggers.take_fresh_observation("a") is True


def test_wake_all_wakes_every_registered_loop() -> None:
    async def scenario() -> None:
        triggers = Triggers()
        uids = ["a", "b", "c"]
        for uid in uids:
            triggers.register(uid)

        triggers.wake_all()

        woken = await asyncio.wait_for(
            asyncio.gather(*(triggers.wait(uid, DEADLINE) for uid in uids)), DEADLINE
        )
        assert woken == [True, True, True]
        assert triggers.take_fresh_observation("a") is False  # a resync is not a Docker event

    asyncio.run(scenario())


def test_unregister_drops_the_loop_and_its_pending_fresh_observation() -> None:
    triggers = Triggers()
    triggers.register("a")
    triggers.register("b")
    triggers.wake("a", fresh_observation=True)
    triggers.wake("b", fresh_observation=True)

    triggers.unregister("a")

    assert len(triggers) == 1
    assert triggers.take_fresh_observation("a") is False
    assert triggers.wake("a") is False
    assert triggers.take_fresh_observation("b") is True
    # Registering again starts clean.
    assert not triggers.register("a").is_set()
    assert triggers.take_fresh_observation("a") is False


def test_registering_twice_returns_the_same_trigger() -> None:
    triggers = Triggers()
    first = triggers.register("a")
    triggers.wake("a")

    assert triggers.register("a") is first
    assert first.is_set()
    assert len(triggers) == 1


def test_routine_wakes_do_not_cut_a_backoff_short_but_a_change_of_the_workspace_does() -> None:
    async def scenario() -> None:
        triggers = Triggers()
        triggers.register("a")
        backing_off = asyncio.create_task(triggers.wait("a", 0.3, backing_off=True))
        await asyncio.sleep(0)
        # The failing pass's own create/start/remove events, and the resync: noted, the wait goes on.
        assert triggers.wake("a", fresh_observation=True, routine=True) is True
        triggers.wake_all(routine=True)
        assert await asyncio.wait_for(backing_off, DEADLINE) is False
        assert triggers.take_fresh_observation("a") is True  # the next pass inspects

        backing_off = asyncio.create_task(triggers.wait("a", DEADLINE, backing_off=True))
        await asyncio.sleep(0)
        triggers.wake("a")  # the spec changed (the watch), or the host came back
        assert await asyncio.wait_for(backing_off, DEADLINE) is True

        plain = asyncio.create_task(triggers.wait("a", DEADLINE))  # not after a failure: events end it
        await asyncio.sleep(0)
        triggers.wake("a", fresh_observation=True, routine=True)
        assert await asyncio.wait_for(plain, DEADLINE) is True

    asyncio.run(scenario())


def test_wake_namespace_wakes_the_loops_of_that_namespace_only() -> None:
    triggers = Triggers()
    a = triggers.register("a", "team-a")
    b = triggers.register("b", "team-b")
    unplaced = triggers.register("c")  # registered by a wait before the watch told its namespace

    triggers.wake_namespace("team-a")

    assert a.is_set()
    assert not b.is_set()
    assert not unplaced.is_set()


def test_routine_wakes_during_the_failing_pass_do_not_cut_its_backoff_short() -> None:
    async def scenario() -> None:
        triggers = Triggers()
        triggers.register("a")
        # While the pass that fails runs: its own removal's event, a resync tick.
        triggers.wake("a", fresh_observation=True, routine=True)
        triggers.wake_all(routine=True)
        assert await triggers.wait("a", NOTHING, backing_off=True) is False  # waited its backoff out
        assert triggers.take_fresh_observation("a") is True

        triggers.wake("a", routine=True)
        triggers.wake("a")  # and a change of the Workspace during the pass: that one counts
        assert await asyncio.wait_for(triggers.wait("a", DEADLINE, backing_off=True), DEADLINE) is True

        triggers.wake("a", routine=True)  # a pass that succeeded: routine wakes end a plain wait
        assert await asyncio.wait_for(triggers.wait("a", DEADLINE), DEADLINE) is True

    asyncio.run(scenario())
