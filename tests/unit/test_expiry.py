"""Expiry: spec.shutdownTime and spec.shutdownAfter, Suspend or Delete as spec.shutdownPolicy says; the
moment computed, and the reconcile that stops (or deletes) the Workspace then and wakes at that moment."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.api.workspace import WorkspaceSpec
from controller.core.causes import Reason
from controller.core.expiry import LONGEST_WAIT, duration_seconds, expired, seconds_until, shutdown_at
from tests.unit.test_reconciler import CONFIG_VOLUME, NS, UID, WORKSPACE_VOLUME, WS, World

CREATED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# --- the moment ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [("8h", 28800), ("90m", 5400), ("1h30m", 5400), ("45s", 45)])
def test_durations_read_as_kubectl_writes_them(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds


def test_the_schema_refuses_what_is_not_a_duration_or_a_time() -> None:
    for bad in ("8 hours", "1d", "h", "-5m"):
        with pytest.raises(ValueError, match=r"shutdownAfter|shutdown_after"):
            WorkspaceSpec.model_validate({"shutdownAfter": bad})
    with pytest.raises(ValueError, match=r"is not a time|pattern"):
        WorkspaceSpec.model_validate({"shutdownTime": "2026-13-45T99:00:00Z"})


def test_shutdown_after_counts_from_creation_and_the_earlier_of_the_two_wins() -> None:
    after = WorkspaceSpec.model_validate({"shutdownAfter": "2h"})
    assert shutdown_at(after, CREATED) == CREATED + timedelta(hours=2)
    both = WorkspaceSpec.model_validate({"shutdownAfter": "2h", "shutdownTime": "2026-12-01T13:00:00Z"})
    assert shutdown_at(both, CREATED) == CREATED + timedelta(hours=1)
    assert shutdown_at(WorkspaceSpec(), CREATED) is None
    assert shutdown_at(after, None) is None


def test_the_expired_message_says_when_why_and_what_follows() -> None:
    spec = WorkspaceSpec.model_validate({"shutdownAfter": "2h"})
    cause = expired(spec, CREATED + timedelta(hours=2))
    assert cause.reason == Reason.EXPIRED
    assert cause.message.startswith(
        "shut down at 2026-12-01T14:00:00Z (spec.shutdownAfter 2h after its creation)"
    )
    assert "volumes kept" in cause.message
    deleting = WorkspaceSpec.model_validate(
        {"shutdownTime": "2026-12-01T13:00:00Z", "shutdownPolicy": "Delete"}
    )
    at = shutdown_at(deleting, CREATED)
    assert at is not None
    assert expired(deleting, at).message == (
        "shut down at 2026-12-01T13:00:00Z (spec.shutdownTime): the Workspace is deleted"
    )


def test_a_far_moment_is_looked_at_again_within_the_hour() -> None:
    assert seconds_until(CREATED + timedelta(days=30), CREATED) == LONGEST_WAIT
    assert seconds_until(CREATED + timedelta(seconds=10), CREATED) == 10.5
    assert seconds_until(CREATED - timedelta(seconds=10), CREATED) == 0.5


# --- the reconcile -----------------------------------------------------------------------------------


def expiring_world(clock: Clock, **spec: Any) -> World:
    world = World(clock=clock, **spec)
    world.body["metadata"]["creationTimestamp"] = "2026-12-01T12:00:00Z"
    return world


def test_a_workspace_runs_until_its_time_then_stops_keeping_its_volumes_and_says_expired() -> None:
    async def scenario() -> None:
        clock = Clock(CREATED + timedelta(minutes=1))
        world = expiring_world(clock, shutdownAfter="10m")
        result = await world.reconcile()
        assert world.cond("Ready") == ("True", "ContainerRunning")
        assert result.requeue_after is not None
        assert result.requeue_after == pytest.approx(9 * 60 + 0.5)
        container = world.container()

        clock.now = CREATED + timedelta(minutes=10, seconds=1)
        mark, events = world.mark(), len(world.kube.events)
        await world.reconcile()
        assert world.writes_since(mark) == [("stop_container", container.id)]
        assert set(world.runtime.volumes) == {CONFIG_VOLUME, WORKSPACE_VOLUME}
        assert world.cond("Ready") == ("False", "Expired")
        assert world.cond("Synced") == ("True", "ReconcilePaused")
        assert world.status["phase"] == "Expired"
        assert "Expired" in world.reasons_since(events)
        assert world.kube.deleted == []

        # Moved later, it runs again: the same container.
        world.change_spec(shutdownAfter="1h")
        mark = world.mark()
        await world.reconcile()
        assert world.writes_since(mark) == [("start_container", container.id)]
        assert world.cond("Ready") == ("True", "ContainerRunning")

    asyncio.run(scenario())


def test_shutdown_policy_delete_stops_the_container_and_deletes_that_very_workspace() -> None:
    async def scenario() -> None:
        clock = Clock(CREATED + timedelta(minutes=1))
        world = expiring_world(clock, shutdownTime="2026-12-01T12:05:00Z", shutdownPolicy="Delete")
        await world.reconcile()
        clock.now = CREATED + timedelta(minutes=6)
        await world.reconcile()
        assert world.kube.deleted == [(NS, WS, UID)]
        assert world.cond("Ready") == ("False", "Expired")
        assert world.container().state == "exited"

    asyncio.run(scenario())


def test_a_workspace_created_past_its_time_is_never_started() -> None:
    async def scenario() -> None:
        clock = Clock(CREATED + timedelta(hours=3))
        world = expiring_world(clock, shutdownAfter="1h")
        await world.reconcile()
        assert [op for op in world.ops_since(0) if op in ("create_container", "start_container")] == []
        assert world.cond("Ready") == ("False", "Expired")

    asyncio.run(scenario())
