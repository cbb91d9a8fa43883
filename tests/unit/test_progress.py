"""The progress deadline: a rollout per configuration, done the first time it is Ready; one not done in
time is Stalled/ProgressDeadlineExceeded with what it waits for, and the controller goes on, more slowly."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from controller.api.workspace import RolloutStatus
from controller.core.progress import deadline_exceeded, deadline_left, next_rollout
from controller.reconcile.reconciler import DEADLINE_EXCEEDED_REQUEUE, Result
from tests.unit.test_reconciler import World

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def test_a_rollout_starts_with_each_configuration_and_is_done_when_first_ready() -> None:
    started = next_rollout(None, "h1", False, T0)
    assert started == RolloutStatus(config_hash="h1", started_at="2026-12-01T12:00:00Z")
    same = next_rollout(started, "h1", False, T0 + timedelta(seconds=5))
    assert same == started
    done = next_rollout(same, "h1", True, T0 + timedelta(seconds=9))
    assert done is not None
    assert done.ready_at == "2026-12-01T12:00:09Z"
    # Not Ready again later: the rollout stays done (a crash is not a stuck change).
    assert next_rollout(done, "h1", False, T0 + timedelta(hours=1)) == done
    changed = next_rollout(done, "h2", False, T0 + timedelta(hours=2))
    assert changed == RolloutStatus(config_hash="h2", started_at="2026-12-01T14:00:00Z")
    assert next_rollout(changed, None, False, T0 + timedelta(hours=3)) == changed  # no plan: kept


def test_the_deadline_counts_from_the_start_of_an_unfinished_rollout() -> None:
    rollout = RolloutStatus(config_hash="h", started_at="2026-12-01T12:00:00Z")
    assert deadline_left(rollout, 30, T0 + timedelta(seconds=10)) == 20
    assert deadline_exceeded(rollout, 30, T0 + timedelta(seconds=29), "x") is None
    late = deadline_exceeded(rollout, 30, T0 + timedelta(seconds=30), "ws-a fails its health check")
    assert late is not None
    assert late.reason == "ProgressDeadlineExceeded"
    assert "not Ready 30s after the change" in late.message
    assert "ws-a fails its health check" in late.message
    done = rollout.model_copy(update={"ready_at": "2026-12-01T12:00:05Z"})
    assert deadline_left(done, 30, T0 + timedelta(days=1)) is None


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_a_workspace_never_healthy_is_stalled_past_its_deadline_and_recovers_when_ready() -> None:
    async def scenario() -> None:
        clock = Clock()
        world = World(clock=clock, progressDeadlineSeconds=60)
        world.runtime.healthcheck = True  # health "starting" until the test says otherwise
        result = await world.reconcile()
        assert world.cond("Ready") == ("False", "ContainerStarting")
        assert result == Result("requeue_after", 2.0)  # its health check has no verdict yet

        clock.now = T0 + timedelta(seconds=61)
        result = await world.reconcile(fresh=True)  # the requeue's own pass
        assert world.cond("Stalled") == ("True", "ProgressDeadlineExceeded")
        stalled = world.condition("Stalled")
        assert stalled is not None
        assert "health check pending" in stalled["message"]
        assert world.status["phase"] == "Failed"
        assert result == Result("requeue_after", DEADLINE_EXCEEDED_REQUEUE)
        assert world.warnings() == ["ProgressDeadlineExceeded"]

        world.container().health = "healthy"
        clock.now = T0 + timedelta(seconds=120)
        await world.reconcile(fresh=True)  # its health_status event
        assert world.cond("Ready") == ("True", "ContainerRunning")
        assert world.condition("Stalled") is None
        assert world.status["rollout"]["readyAt"] == "2026-12-01T12:02:00Z"

    asyncio.run(scenario())


def test_before_the_deadline_a_pass_is_due_at_it_even_without_docker_events() -> None:
    async def scenario() -> None:
        clock = Clock()
        world = World(clock=clock, progressDeadlineSeconds=60)
        world.runtime.healthcheck = True
        await world.reconcile()
        world.container().health = "unhealthy"  # no follow-up of its own: only events or the resync
        clock.now = T0 + timedelta(seconds=20)
        result = await world.reconcile(fresh=True)  # the requeue's own pass
        assert world.cond("Ready") == ("False", "ContainerUnhealthy")
        assert result == Result("requeue_after", 41.0)

    asyncio.run(scenario())
