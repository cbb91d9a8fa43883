"""spec.updateStrategy StartFirst: the pure steps of a rollout, as a table."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from controller.core import start_first
from controller.core.causes import Cause, Reason
from controller.core.policy import Grant
from controller.core.start_first import (
    DRAIN_SECONDS,
    Abandon,
    AwaitNext,
    FailedRollout,
    HoldFailed,
    Promote,
    Retire,
    RolloutAction,
    RolloutView,
    StartNext,
    next_name,
    retired_name,
    roll,
    rolls,
)
from controller.port.values import ObservedContainer
from tests.support.plans import make_plan
from tests.unit.test_decide import OTHER_PLAN, PLAN, container
from tests.unit.test_reconciler import NAME, World, running_world

OLD = container(OTHER_PLAN, "running")  # serving, of the previous configuration
NEXT = dataclasses.replace(container(PLAN, "running", "starting"), id="n3xt", name=next_name(PLAN.name))
NEXT_READY = dataclasses.replace(NEXT, health="healthy")
NEXT_STALE = dataclasses.replace(container(OTHER_PLAN, "running"), id="n3xt", name=next_name(PLAN.name))
RETIRED = dataclasses.replace(container(OTHER_PLAN, "running"), id="0ld", name=retired_name(PLAN.name))
FAILED_CAUSE = Cause(Reason.ROLLOUT_FAILED, "the rollout failed")
NOW = 1000.0


class TestClock:
    __test__ = False

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def view(
    serving: ObservedContainer | None = OLD,
    nxt: ObservedContainer | None = None,
    retired: ObservedContainer | None = None,
    *,
    retired_for: float = 0.0,
    deadline_passed: bool = False,
    failed: FailedRollout | None = None,
) -> RolloutView:
    return RolloutView(serving, nxt, retired, retired_for, deadline_passed, failed)


@pytest.mark.parametrize(
    ("case", "situation", "start_first", "wanted", "expected"),
    [
        ("a change, nothing started yet -> start the next", view(), True, True, StartNext()),
        ("Recreate -> decide as usual", view(), False, True, None),
        ("no change due -> as usual", view(), True, False, None),
        ("next starting -> wait", view(nxt=NEXT), True, True, AwaitNext("n3xt", NEXT.name or "")),
        ("next Ready -> promote", view(nxt=NEXT_READY), True, True, Promote(OLD.id, "n3xt")),
        (
            "next Ready, the old gone -> promote alone",
            view(None, NEXT_READY),
            True,
            False,
            Promote(None, "n3xt"),
        ),
        (
            "next of a config no longer wanted -> remove it",
            view(nxt=NEXT_STALE),
            True,
            True,
            Abandon("n3xt", None),
        ),
        ("strategy back to Recreate -> remove the next", view(nxt=NEXT), False, True, Abandon("n3xt", None)),
        ("retired, draining -> as usual", view(retired=RETIRED, retired_for=1.0), True, False, None),
        (
            "retired, drained -> retire it",
            view(retired=RETIRED, retired_for=DRAIN_SECONDS),
            True,
            False,
            Retire("0ld"),
        ),
        (
            "failed a moment ago -> hold",
            view(failed=FailedRollout(PLAN.config_hash, NOW + 10, FAILED_CAUSE)),
            True,
            True,
            HoldFailed(FAILED_CAUSE),
        ),
        (
            "failed long ago -> try again",
            view(failed=FailedRollout(PLAN.config_hash, NOW - 1, FAILED_CAUSE)),
            True,
            True,
            StartNext(),
        ),
        (
            "another config failed -> start",
            view(failed=FailedRollout(OTHER_PLAN.config_hash, NOW + 10, FAILED_CAUSE)),
            True,
            True,
            StartNext(),
        ),
    ],
)
def test_roll(
    case: str, situation: RolloutView, start_first: bool, wanted: bool, expected: RolloutAction | None
) -> None:
    assert (
        roll(
            situation,
            config_hash=PLAN.config_hash,
            start_first=start_first,
            wanted=wanted,
            new_image=False,
            now=NOW,
        )
        == expected
    )


@pytest.mark.parametrize(
    ("nxt", "deadline_passed", "words"),
    [
        (NEXT, True, "did not become Ready within spec.progressDeadlineSeconds"),
        (dataclasses.replace(NEXT, health="unhealthy"), True, "fails its health check"),
        (
            dataclasses.replace(NEXT, state="restarting", health=None, exit_code=3),
            True,
            "keeps exiting (exit code 3)",
        ),
        (dataclasses.replace(NEXT, state="exited", health=None, exit_code=1), False, "exited (exit code 1)"),
    ],
)
def test_a_next_that_fails_is_removed_saying_why_and_that_the_old_one_serves(
    nxt: ObservedContainer, deadline_passed: bool, words: str
) -> None:
    action = roll(
        view(nxt=nxt, deadline_passed=deadline_passed),
        config_hash=PLAN.config_hash,
        start_first=True,
        wanted=True,
        new_image=False,
        now=NOW,
    )
    assert isinstance(action, Abandon)
    assert action.cause is not None
    assert action.cause.reason == "RolloutFailed"
    assert words in action.cause.message
    assert "the previous container keeps serving" in action.cause.message


def test_a_new_image_is_pulled_for_the_next() -> None:
    action = roll(
        view(), config_hash=PLAN.config_hash, start_first=True, wanted=True, new_image=True, now=NOW
    )
    assert action == StartNext(pull=True)


@pytest.mark.parametrize(
    ("serving", "why", "new_image", "expected"),
    [
        (OLD, "a changed configuration", False, True),
        (OLD, "a swapped image", False, True),
        (OLD, None, True, True),
        (OLD, None, False, False),
        (OLD, "a dead container", False, False),
        (OLD, "a session reset", False, False),
        (dataclasses.replace(OLD, state="exited"), "a changed configuration", False, False),
        (None, None, False, False),
    ],
)
def test_what_rolls_start_first(
    serving: ObservedContainer | None, why: str | None, new_image: bool, expected: bool
) -> None:
    assert rolls(serving, why, new_image=new_image) is expected


# --- through the reconciler, on the fake runtime --------------------------------------------------


def _names(world: World) -> dict[str, str]:
    return {c.name: c.id for c in world.runtime.containers.values()}


def test_a_start_first_rollout_starts_beside_switches_when_ready_and_retires_the_old_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> None:
        world = await running_world(updateStrategy="StartFirst")
        world.runtime.healthcheck = True
        old = world.container()
        old_endpoint = world.status["endpoint"]
        world.change_spec(env=[{"name": "MODEL", "value": "next"}])

        result = await world.reconcile()  # the replacement starts beside the old one
        upcoming = next_name(NAME)
        assert set(_names(world)) == {NAME, upcoming}
        assert world.container().id == old.id
        assert world.runtime.containers[_names(world)[upcoming]].spec.aliases == ()
        assert world.cond("Ready") == ("True", "ContainerRunning")  # the old one serves
        assert world.cond("Reconciling") == ("True", "RollingOut")
        assert world.status["container"]["id"] == old.id
        assert world.status["endpoint"] == old_endpoint
        assert result.requeue_after == 2.0

        await world.reconcile(fresh=True)  # the requeue's own pass: not Ready yet, nothing changes
        assert set(_names(world)) == {NAME, upcoming}
        reconciling = world.condition("Reconciling")
        assert reconciling is not None
        assert f"waiting for {upcoming} to become Ready" in reconciling["message"]

        new_id = _names(world)[upcoming]
        world.runtime.containers[new_id].health = "healthy"
        world.observer.heard(upcoming)  # its health_status event: the switch
        result = await world.reconcile(fresh=True)
        assert _names(world) == {NAME: new_id, retired_name(NAME): old.id}
        assert world.status["container"]["id"] == new_id
        assert world.status["endpoint"] != old_endpoint
        assert world.cond("Ready") == ("True", "ContainerRunning")
        assert world.condition("Reconciling") is None
        assert world.status["rollout"]["readyAt"]
        assert result.requeue_after == DRAIN_SECONDS + 0.5
        assert "RolledOut" in world.reasons_since(0)

        mark = world.mark()
        result = await world.reconcile()  # woken while draining: the old one is left alone
        assert world.writes_since(mark) == []
        # ... and the pass comes back when the drain ends, whatever woke this one.
        assert result.requeue_after is not None
        assert 0.5 < result.requeue_after <= DRAIN_SECONDS + 0.5

        monkeypatch.setattr(start_first, "DRAIN_SECONDS", 0.0)
        await world.reconcile()
        assert _names(world) == {NAME: new_id}
        assert world.runtime.containers[new_id].state == "running"
        assert "Retired" in world.reasons_since(0)

    asyncio.run(scenario())


def test_a_replacement_never_ready_is_removed_at_the_deadline_and_the_old_one_keeps_serving() -> None:
    async def scenario() -> None:
        clock = TestClock()
        world = World(clock=clock, updateStrategy="StartFirst", progressDeadlineSeconds=30)
        await world.reconcile()
        old = world.container()
        world.runtime.healthcheck = True
        world.change_spec(env=[{"name": "AGENT_UNHEALTHY", "value": "1"}])
        await world.reconcile()
        assert next_name(NAME) in _names(world)

        clock.now += timedelta(seconds=31)
        result = await world.reconcile()
        assert set(_names(world)) == {NAME}
        assert world.container().id == old.id
        assert world.container().state == "running"
        assert world.cond("Synced") == ("False", "RolloutFailed")
        synced = world.condition("Synced")
        assert synced is not None
        assert "did not become Ready within spec.progressDeadlineSeconds" in synced["message"]
        assert world.cond("Ready") == ("True", "ContainerRunning")
        assert world.condition("Stalled") is None
        assert result.result == "error"
        assert "RolloutFailed" in world.warnings()

        mark = world.mark()
        await world.reconcile()  # held: not tried again at once
        assert world.writes_since(mark) == []
        assert world.cond("Synced") == ("False", "RolloutFailed")

        world.change_spec(env=[])  # back to what runs: nothing to roll out, all clear
        await world.reconcile()
        assert world.cond("Synced") == ("True", "ReconcileSuccess")
        assert world.container().id == old.id

    asyncio.run(scenario())


def test_tier_4_replaces_as_recreate_whatever_the_strategy() -> None:
    """The host network has one port 8000: two containers cannot both hold it."""
    grant = Grant(tiers=frozenset({1, 2, 4}))
    assert make_plan({"updateStrategy": "StartFirst"}).start_first
    assert not make_plan({"updateStrategy": "StartFirst", "tier": 4}, grant=grant).start_first
    assert not make_plan().start_first
    assert make_plan({"updateStrategy": "StartFirst"}).config_hash == make_plan().config_hash
