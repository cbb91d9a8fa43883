"""Conditions follow kstatus: Ready and Synced always, Reconciling/Stalled only while True, stable times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from controller.api.workspace import Condition, ContainerStatus, WorkspaceStatus
from controller.core.causes import Cause, Reason
from controller.core.conditions import (
    ConditionUpdate,
    ReconcileOutcome,
    compute_conditions,
    compute_phase,
    find_condition,
    format_time,
    set_condition,
)
from controller.core.status import status_changed

T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
RUNNING = ContainerStatus(name="ws-abc", state="running", health="healthy", config_hash="h1")


def by_type(conditions: list[Condition]) -> dict[str, Condition]:
    return {c.type: c for c in conditions}


def test_format_time_is_rfc3339_utc_seconds() -> None:
    assert format_time(T0) == "2026-05-01T12:00:00Z"
    assert format_time(datetime(2026, 5, 1, 14, 0, 0, 999, tzinfo=timezone(timedelta(hours=2)))) == (
        "2026-05-01T12:00:00Z"
    )
    assert format_time(datetime(2026, 5, 1, 12, 0, 0)) == "2026-05-01T12:00:00Z"


def test_set_condition_keeps_transition_time_when_status_is_unchanged() -> None:
    first = set_condition([], ConditionUpdate("Ready", "False", "ContainerStarting", "a"), T0)
    second = set_condition(first, ConditionUpdate("Ready", "False", "ContainerExited", "b"), T1)
    assert second[0].last_transition_time == format_time(T0)
    assert (second[0].reason, second[0].message) == ("ContainerExited", "b")


def test_set_condition_moves_transition_time_when_status_changes() -> None:
    first = set_condition([], ConditionUpdate("Ready", "False", "ContainerStarting"), T0)
    second = set_condition(first, ConditionUpdate("Ready", "True", "ContainerRunning"), T1)
    assert second[0].last_transition_time == format_time(T1)


def test_set_condition_replaces_in_place_and_appends_new_types() -> None:
    conditions = set_condition([], ConditionUpdate("A", "True", "X"), T0)
    conditions = set_condition(conditions, ConditionUpdate("B", "True", "X"), T0)
    conditions = set_condition(conditions, ConditionUpdate("A", "False", "Y"), T1)
    assert [c.type for c in conditions] == ["A", "B"]
    assert conditions[0].status == "False"


def test_first_visit_is_ready_unknown_and_reconciling() -> None:
    conditions = by_type(compute_conditions(1, ReconcileOutcome(), [], T0))
    assert conditions["Ready"].status == "Unknown"
    assert conditions["Reconciling"].status == "True"
    assert conditions["Reconciling"].reason == "Progressing"
    assert conditions["Synced"].status == "True"
    assert "Stalled" not in conditions


def test_running_container_is_ready_and_reconciling_disappears() -> None:
    first = compute_conditions(1, ReconcileOutcome(progressing=Cause(Reason.CREATING, "creating")), [], T0)
    assert by_type(first)["Reconciling"].reason == "Creating"
    done = by_type(
        compute_conditions(1, ReconcileOutcome(container=RUNNING, desired_config_hash="h1"), first, T1)
    )
    assert done["Ready"].status == "True"
    assert done["Ready"].reason == "ContainerRunning"
    assert done["Synced"].reason == "ReconcileSuccess"
    assert set(done) == {"Ready", "Synced"}


def test_every_condition_is_stamped_with_the_generation() -> None:
    conditions = compute_conditions(7, ReconcileOutcome(stalled=Cause(Reason.IMAGE_NOT_FOUND, "x")), [], T0)
    assert {c.observed_generation for c in conditions} == {7}


def test_stalled_sets_ready_false_synced_false_and_never_reconciling() -> None:
    outcome = ReconcileOutcome(
        stalled=Cause(Reason.UNKNOWN_RUNTIME, "runtime 'x' is unknown"),
        progressing=Cause(Reason.PULLING, "pulling"),
    )
    conditions = by_type(compute_conditions(2, outcome, [], T0))
    assert conditions["Stalled"].status == "True"
    assert conditions["Stalled"].reason == "UnknownRuntime"
    assert "Reconciling" not in conditions
    assert (conditions["Ready"].status, conditions["Ready"].reason) == ("False", "UnknownRuntime")
    assert (conditions["Synced"].status, conditions["Synced"].reason) == ("False", "ReconcileError")
    assert conditions["Synced"].message == "runtime 'x' is unknown"


def test_stalled_clears_once_the_problem_is_fixed() -> None:
    stalled = compute_conditions(2, ReconcileOutcome(stalled=Cause(Reason.IMAGE_NOT_FOUND, "x")), [], T0)
    fixed = by_type(compute_conditions(3, ReconcileOutcome(container=RUNNING), stalled, T1))
    assert "Stalled" not in fixed
    assert fixed["Ready"].status == "True"
    assert fixed["Ready"].last_transition_time == format_time(T1)


def test_stalled_wins_over_a_still_running_old_container() -> None:
    outcome = ReconcileOutcome(container=RUNNING, stalled=Cause(Reason.IMAGE_NOT_FOUND, "missing"))
    assert by_type(compute_conditions(2, outcome, [], T0))["Ready"].status == "False"


def test_transient_error_keeps_ready_from_the_container_and_sets_synced_false() -> None:
    outcome = ReconcileOutcome(container=RUNNING, error=Cause(Reason.RECONCILE_ERROR, "timeout"))
    conditions = by_type(compute_conditions(1, outcome, [], T0))
    assert conditions["Ready"].status == "True"
    assert (conditions["Synced"].status, conditions["Synced"].reason) == ("False", "ReconcileError")
    assert "Stalled" not in conditions


def test_docker_unavailable_makes_readiness_unknown() -> None:
    previous = compute_conditions(1, ReconcileOutcome(container=RUNNING), [], T0)
    outcome = ReconcileOutcome(error=Cause(Reason.DOCKER_UNAVAILABLE, "cannot connect"))
    conditions = by_type(compute_conditions(1, outcome, previous, T1))
    # Ready says whose problem it is (the host's), Synced what failed (Docker did not answer).
    assert (conditions["Ready"].status, conditions["Ready"].reason) == ("Unknown", "HostUnavailable")
    assert conditions["Ready"].message == "cannot connect"
    assert conditions["Synced"].reason == "DockerUnavailable"


def test_a_failed_pass_without_a_container_is_not_ready() -> None:
    previous = compute_conditions(1, ReconcileOutcome(container=RUNNING), [], T0)
    outcome = ReconcileOutcome(error=Cause(Reason.RECONCILE_ERROR, "creating the container failed"))
    ready = by_type(compute_conditions(1, outcome, previous, T1))["Ready"]
    assert (ready.status, ready.reason) == ("False", "ReconcileError")
    assert ready.message == "creating the container failed"


def test_suspended_is_not_ready_but_synced_paused() -> None:
    conditions = by_type(compute_conditions(1, ReconcileOutcome(suspended=True), [], T0))
    assert (conditions["Ready"].status, conditions["Ready"].reason) == ("False", "Suspended")
    assert (conditions["Synced"].status, conditions["Synced"].reason) == ("True", "ReconcilePaused")
    assert "Reconciling" not in conditions


def test_container_from_a_previous_config_is_not_ready() -> None:
    outcome = ReconcileOutcome(container=RUNNING, desired_config_hash="h2")
    assert by_type(compute_conditions(2, outcome, [], T0))["Ready"].reason == "ConfigOutdated"


def test_container_states_map_to_ready_reasons() -> None:
    cases = {
        ("running", "starting"): ("False", "ContainerStarting"),
        ("running", "unhealthy"): ("False", "ContainerUnhealthy"),
        ("running", ""): ("True", "ContainerRunning"),
        ("restarting", ""): ("False", "ContainerRestarting"),
        ("exited", ""): ("False", "ContainerExited"),
        ("created", ""): ("False", "ContainerNotRunning"),
    }
    for (state, health), expected in cases.items():
        outcome = ReconcileOutcome(container=ContainerStatus(name="ws-a", state=state, health=health))
        ready = by_type(compute_conditions(1, outcome, [], T0))["Ready"]
        assert (ready.status, ready.reason) == expected, (state, health)


def test_oom_killed_exit_is_explained() -> None:
    container = ContainerStatus(name="ws-a", state="exited", exit_code=137, oom_killed=True)
    ready = by_type(compute_conditions(1, ReconcileOutcome(container=container), [], T0))["Ready"]
    assert "exit code 137" in ready.message
    assert "memory limit" in ready.message


def test_missing_container_after_first_visit_is_not_ready() -> None:
    previous = compute_conditions(1, ReconcileOutcome(container=RUNNING), [], T0)
    ready = by_type(compute_conditions(1, ReconcileOutcome(), previous, T1))["Ready"]
    assert (ready.status, ready.reason) == ("False", "ContainerMissing")


def test_deleting_reports_terminating_work() -> None:
    conditions = by_type(compute_conditions(1, ReconcileOutcome(deleting=True, suspended=True), [], T0))
    assert conditions["Ready"].reason == "Deleting"
    assert conditions["Reconciling"].reason == "Deleting"
    assert conditions["Synced"].reason == "ReconcileSuccess"


def test_conditions_of_other_types_are_preserved() -> None:
    foreign = set_condition([], ConditionUpdate("example.com/Audit", "True", "Checked"), T0)
    conditions = compute_conditions(1, ReconcileOutcome(container=RUNNING), foreign, T1)
    assert find_condition(conditions, "example.com/Audit") == foreign[0]


def test_a_pass_that_changes_nothing_produces_an_identical_status() -> None:
    outcome = ReconcileOutcome(container=RUNNING, desired_config_hash="h1")
    first = compute_conditions(3, outcome, [], T0)
    second = compute_conditions(3, outcome, first, T1)
    old = WorkspaceStatus(observed_generation=3, conditions=tuple(first), phase="Running").to_dict()
    new = WorkspaceStatus(observed_generation=3, conditions=tuple(second), phase="Running").to_dict()
    assert not status_changed(old, new)


def test_status_changed_compares_semantically() -> None:
    cond_a = {"type": "A", "status": "True"}
    cond_b = {"type": "B", "status": "False"}
    assert not status_changed({"conditions": [cond_a, cond_b]}, {"conditions": [cond_b, cond_a]})
    assert not status_changed({"phase": "Running", "endpoint": None}, {"phase": "Running"})
    assert not status_changed(None, {"conditions": [], "session": {}})
    assert status_changed({"phase": "Running"}, {"phase": "Exited"})
    assert status_changed({"conditions": [cond_a]}, {"conditions": [{**cond_a, "lastTransitionTime": "x"}]})
    assert status_changed({"container": {"restartCount": 0}}, {"container": {"restartCount": 1}})
    assert status_changed({}, {"observedGeneration": 0})


def test_phase_summarises_the_outcome() -> None:
    def phase(**kwargs: object) -> str:
        return compute_phase(ReconcileOutcome(**kwargs))  # type: ignore[arg-type]

    def container(state: str, health: str = "") -> ContainerStatus:
        return ContainerStatus(state=state, health=health)

    assert phase() == "Pending"
    assert phase(progressing=Cause(Reason.PULLING)) == "Creating"
    assert phase(progressing=Cause(Reason.PROGRESSING)) == "Pending"
    assert phase(container=container("running")) == "Running"
    assert phase(container=container("running", "starting")) == "Starting"
    assert phase(container=container("running", "unhealthy")) == "Unhealthy"
    assert phase(container=container("restarting")) == "Restarting"
    assert phase(container=container("exited")) == "Exited"
    assert phase(container=container("dead")) == "Exited"
    assert phase(container=container("created")) == "Creating"
    assert phase(container=container("paused")) == "Pending"
    assert phase(suspended=True, container=container("running")) == "Suspended"
    assert phase(stalled=Cause(Reason.CRASH_LOOP), container=container("restarting")) == "Failed"
    assert phase(deleting=True, stalled=Cause(Reason.CRASH_LOOP)) == "Terminating"
    assert phase(stalled=Cause(Reason.UNSCHEDULABLE)) == "Pending"
    assert phase(stalled=Cause(Reason.PLACEMENT_CONFLICT), container=container("running")) == "Failed"


def test_every_reason_is_a_valid_condition_reason() -> None:
    for reason in Reason:
        Condition(type="Ready", status="True", reason=reason, message="", last_transition_time="t")


def test_ready_is_unknown_while_docker_does_not_answer_even_with_a_last_known_running_container() -> None:
    running = ContainerStatus(name="ws-x", state="running", config_hash="h")
    outcome = ReconcileOutcome(
        container=running,
        desired_config_hash="h",
        error=Cause(Reason.DOCKER_UNAVAILABLE, "the Docker daemon is not answering"),
    )
    conditions = {c.type: c for c in compute_conditions(3, outcome, [], T0)}
    assert conditions["Ready"].status == "Unknown"
    assert conditions["Ready"].reason == "HostUnavailable"
    assert conditions["Synced"].status == "False"
