"""Idle hibernation: the traffic samples, the verdicts, and the reconcile that stops an idle agent (its
volumes kept), keeps it asleep across passes, and starts the same container when asked to wake."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from controller.api.workspace import HibernationStatus, WorkspaceSpec
from controller.core.causes import Reason
from controller.core.hibernation import (
    IDLE_NOISE_BYTES,
    Activity,
    idle_long_enough,
    judge,
    sample_every,
    sampled,
)
from tests.unit.test_reconciler import CONFIG_VOLUME, WORKSPACE_VOLUME, World

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HIBERNATING = WorkspaceSpec.model_validate({"hibernation": {"idleAfter": "10m"}})


# --- the samples ------------------------------------------------------------------------------------


def test_traffic_above_the_noise_moves_the_clock_and_chatter_below_it_does_not() -> None:
    first = sampled(None, 1000, 0.0)
    assert first == Activity(1000, 0.0)
    chatter = sampled(first, 1000 + IDLE_NOISE_BYTES - 1, 30.0)
    assert chatter == Activity(1000 + IDLE_NOISE_BYTES - 1, 0.0)
    traffic = sampled(chatter, chatter.received + IDLE_NOISE_BYTES if chatter.received else 0, 60.0)
    assert traffic.active_at == 60.0


def test_a_counter_that_went_back_is_a_new_container_and_the_clock_starts_again() -> None:
    assert sampled(Activity(50_000, 0.0), 100, 90.0) == Activity(100, 90.0)
    assert sampled(Activity(None, 0.0), 100, 90.0) == Activity(100, 90.0)


def test_idle_is_idle_after_and_samples_come_a_sixth_of_it_apart_within_bounds() -> None:
    assert not idle_long_enough(HIBERNATING, Activity(0, 0.0), 599.0)
    assert idle_long_enough(HIBERNATING, Activity(0, 0.0), 600.0)
    instant = WorkspaceSpec.model_validate({"hibernation": {"idleAfter": "0s"}})
    assert not idle_long_enough(instant, Activity(0, 0.0), 9.0)
    assert idle_long_enough(instant, Activity(0, 0.0), 10.0)
    assert sample_every(HIBERNATING) == 60.0
    assert sample_every(WorkspaceSpec.model_validate({"hibernation": {"idleAfter": "30s"}})) == 5.0
    assert sample_every(WorkspaceSpec.model_validate({"hibernation": {"idleAfter": "5s"}})) == 2.0


# --- the verdicts -------------------------------------------------------------------------------------


def test_found_idle_it_hibernates_saying_since_when_and_how_to_wake_it() -> None:
    verdict = judge(HIBERNATING, None, idle=True, now=NOW)
    assert verdict.status == HibernationStatus(hibernated_at="2026-12-01T12:00:00Z")
    assert verdict.cause is not None
    assert verdict.cause.reason == Reason.HIBERNATED
    assert "after 10m without traffic" in verdict.cause.message
    assert "kubectl workspace wake" in verdict.cause.message


def test_asleep_it_stays_asleep_until_a_new_wake_token() -> None:
    asleep = HibernationStatus(hibernated_at="2026-12-01T11:00:00Z", last_wake_handled="t1")
    spec = HIBERNATING.model_copy(update={"wake_requested_at": "t1"})
    assert judge(spec, asleep, idle=False, now=NOW).cause is not None
    woken = judge(spec.model_copy(update={"wake_requested_at": "t2"}), asleep, idle=False, now=NOW)
    assert woken.cause is None
    assert woken.woken
    assert woken.status == HibernationStatus(last_wake_handled="t2")


def test_switching_hibernation_off_wakes_an_agent_that_sleeps() -> None:
    asleep = HibernationStatus(hibernated_at="2026-12-01T11:00:00Z")
    verdict = judge(WorkspaceSpec(), asleep, idle=False, now=NOW)
    assert verdict.cause is None
    assert verdict.woken
    assert verdict.status is None


# --- the reconcile ------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.at = NOW

    @property
    def now(self) -> float:
        return self.at.timestamp()

    @now.setter
    def now(self, seconds: float) -> None:
        self.at = datetime.fromtimestamp(seconds, UTC)

    def __call__(self) -> datetime:
        return self.at


def sleepy_world(**spec: Any) -> tuple[World, Clock]:
    clock = Clock()
    return World(clock=clock, hibernation={"idleAfter": "10m"}, **spec), clock


def test_an_idle_agent_is_stopped_keeping_its_volumes_and_woken_as_the_same_container() -> None:
    async def scenario() -> None:
        world, clock = sleepy_world()
        result = await world.reconcile()
        assert world.cond("Ready") == ("True", "ContainerRunning")
        assert result.requeue_after == 60.0  # the next sample
        container = world.container()

        # Traffic keeps it up.
        clock.now += 590.0
        container.received += 10 * IDLE_NOISE_BYTES
        await world.reconcile()
        clock.now += 590.0
        await world.reconcile()
        assert world.container().state == "running"

        # A pass before the next sample is due (woken by an event, say) asks Docker nothing.
        clock.now += 20.0
        mark = world.mark()
        result = await world.reconcile()
        assert "network_received" not in world.ops_since(mark)
        assert result.requeue_after == 40.0  # the sample still due

        # Quiet for idleAfter: the sample says so, and the very next pass stops it.
        clock.now += 40.0
        result = await world.reconcile()
        assert result.requeue_after == 0.1
        mark, events = world.mark(), len(world.kube.events)
        await world.reconcile()
        assert world.writes_since(mark) == [("stop_container", container.id)]
        assert set(world.runtime.volumes) == {CONFIG_VOLUME, WORKSPACE_VOLUME}
        assert world.cond("Ready") == ("False", "Hibernated")
        assert world.status["phase"] == "Hibernated"
        assert world.status["hibernation"]["hibernatedAt"]
        assert "Hibernated" in world.reasons_since(events)

        # Asleep across passes: nothing is started.
        mark = world.mark()
        await world.reconcile()
        assert world.writes_since(mark) == []

        world.change_spec(wakeRequestedAt="now")
        mark, events = world.mark(), len(world.kube.events)
        await world.reconcile()
        assert world.writes_since(mark) == [("start_container", container.id)]
        assert world.cond("Ready") == ("True", "ContainerRunning")
        assert world.status["hibernation"] == {"lastWakeHandled": "now"}
        assert "Woken" in world.reasons_since(events)

        # The idle clock starts afresh at the wake.
        clock.now += 300.0
        await world.reconcile()
        assert world.container().state == "running"

    asyncio.run(scenario())


def test_a_suspended_workspace_is_not_sampled() -> None:
    async def scenario() -> None:
        world, _ = sleepy_world(suspend=True)
        await world.reconcile()
        assert "network_received" not in world.ops_since(0)
        assert world.cond("Ready") == ("False", "Suspended")

    asyncio.run(scenario())
