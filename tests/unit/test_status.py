"""The Workspace status built from one pass's outcome, and what its changes announce.

Pinned: phase and conditions for each kind of outcome (first visit, running, outdated, failing, Docker
unavailable, stalled, suspended, deleting), what is kept from the previous status when the pass could not
see it (container and endpoint), the endpoints, the echoes of handled requests, the interim status
during a pull, the semantic comparison that avoids needless writes, and the Warning Events.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.api.workspace import ContainerStatus, SessionStatus, WorkspaceStatus
from controller.core import labels
from controller.core.causes import Cause, Reason
from controller.core.conditions import ConditionType, find_condition, format_time
from controller.core.plan import ContainerPlan
from controller.core.status import (
    PassOutcome,
    build_status,
    container_status,
    interim_status,
    is_ready,
    is_stalled,
    previous_status,
    status_changed,
    warnings,
)
from controller.port.values import ContainerState, Health, ObservedContainer
from tests.support.plans import make_plan

T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
T0_TEXT = "2026-05-01T12:00:00Z"
T1_TEXT = "2026-05-01T12:05:00Z"


PLAN = make_plan()
TIER4 = make_plan({"tier": 4})
OLD_HASH = "0" * 64


def container(
    plan: ContainerPlan = PLAN,
    state: ContainerState = "running",
    health: Health | None = "healthy",
    **changes: Any,
) -> ObservedContainer:
    base = ObservedContainer(
        id="c0ffee0123456789",
        name=plan.name,
        image=plan.image,
        image_id="sha256:" + "a" * 64,
        labels=dict(plan.container.labels),
        state=state,
        health=health,
        exit_code=None,
        host_port=32768,
        created=0.0,
        detail=True,
        started_at=T0,
    )
    return dataclasses.replace(base, **changes)


def outdated(state: ContainerState = "running") -> ObservedContainer:
    return container(state=state, labels=labels.with_config_hash(PLAN.container.labels, OLD_HASH))


CREATING = Cause(Reason.CREATING, "creating container ws-3f2a9c1e-8b7")
PULLING = Cause(Reason.PULLING, "pulling ghcr.io/molecule-ai/workspace-template-langgraph:latest")
FAILED = Cause(Reason.RECONCILE_ERROR, "failed to start container ws-3f2a9c1e-8b7: port is taken")
NO_DOCKER = Cause(Reason.DOCKER_UNAVAILABLE, "the Docker daemon is not answering: connection refused")
NO_IMAGE = Cause(Reason.IMAGE_NOT_FOUND, "image 'ghcr.io/x/y:1' was not found after a pull attempt")
NO_AUTH = Cause(Reason.REGISTRY_AUTH_FAILED, "registry ghcr.io refused to serve ghcr.io/x/y:1")

EMPTY = WorkspaceStatus()


def build(
    outcome: PassOutcome,
    previous: WorkspaceStatus = EMPTY,
    *,
    now: datetime = T1,
    generation: int = 1,
    reconcile_requested_at: str | None = None,
) -> WorkspaceStatus:
    return build_status(
        generation=generation,
        previous=previous,
        outcome=outcome,
        reconcile_requested_at=reconcile_requested_at,
        now=now,
    )


SETTLED = build(PassOutcome(plan=PLAN, container=container()), now=T0)
"""A workspace running its current container, as a previous status."""
SETTLED_ENDPOINT = "http://127.0.0.1:32768"


@dataclass(frozen=True)
class Expect:
    phase: str
    ready: tuple[str, str]
    synced: tuple[str, str]
    reconciling: str | None = None
    stalled: str | None = None
    container: str | None = None
    """status.container.state; None when status.container is absent."""
    endpoint: str | None = None


def summary(status: WorkspaceStatus) -> Expect:
    def pair(kind: ConditionType) -> tuple[str, str]:
        condition = find_condition(status.conditions, kind)
        assert condition is not None, f"{kind} is always present"
        return condition.status, condition.reason

    def reason_if_true(kind: ConditionType) -> str | None:
        condition = find_condition(status.conditions, kind)
        if condition is None:
            return None
        assert condition.status == "True", f"{kind} is present only while True"
        return condition.reason

    reconciling, stalled = reason_if_true(ConditionType.RECONCILING), reason_if_true(ConditionType.STALLED)
    assert reconciling is None or stalled is None, "never both Reconciling and Stalled"
    assert status.phase is not None
    return Expect(
        phase=status.phase,
        ready=pair(ConditionType.READY),
        synced=pair(ConditionType.SYNCED),
        reconciling=reconciling,
        stalled=stalled,
        container=status.container.state if status.container else None,
        endpoint=status.endpoint,
    )


SUCCESS = ("True", "ReconcileSuccess")

OUTCOMES: list[tuple[str, WorkspaceStatus, PassOutcome, Expect]] = [
    # -- first visit -----------------------------------------------------------------------------------
    (
        "first visit, creating",
        EMPTY,
        PassOutcome(plan=PLAN, progressing=CREATING),
        Expect("Creating", ("Unknown", "Creating"), SUCCESS, reconciling="Creating"),
    ),
    (
        "first visit, pulling",
        EMPTY,
        PassOutcome(plan=PLAN, progressing=PULLING),
        Expect("Creating", ("Unknown", "Pulling"), SUCCESS, reconciling="Pulling"),
    ),
    (
        "first visit, no progress reported",
        EMPTY,
        PassOutcome(plan=PLAN),
        Expect("Pending", ("Unknown", "Progressing"), SUCCESS, reconciling="Progressing"),
    ),
    (
        "first visit, created not started",
        EMPTY,
        PassOutcome(plan=PLAN, container=container(state="created", health=None, host_port=None)),
        Expect(
            "Creating",
            ("False", "ContainerNotRunning"),
            SUCCESS,
            reconciling="Progressing",
            container="created",
        ),
    ),
    # -- a running container ---------------------------------------------------------------------------
    (
        "first visit, running current",
        EMPTY,
        PassOutcome(plan=PLAN, container=container()),
        Expect(
            "Running", ("True", "ContainerRunning"), SUCCESS, container="running", endpoint=SETTLED_ENDPOINT
        ),
    ),
    (
        "running current, progress no longer shown",
        SETTLED,
        PassOutcome(plan=PLAN, container=container(), progressing=CREATING),
        Expect(
            "Running", ("True", "ContainerRunning"), SUCCESS, container="running", endpoint=SETTLED_ENDPOINT
        ),
    ),
    (
        "running current on another host port",
        SETTLED,
        PassOutcome(plan=PLAN, container=container(host_port=40001)),
        Expect(
            "Running",
            ("True", "ContainerRunning"),
            SUCCESS,
            container="running",
            endpoint="http://127.0.0.1:40001",
        ),
    ),
    (
        "running, health check pending",
        SETTLED,
        PassOutcome(plan=PLAN, container=container(health="starting")),
        Expect(
            "Starting",
            ("False", "ContainerStarting"),
            SUCCESS,
            container="running",
            endpoint=SETTLED_ENDPOINT,
        ),
    ),
    (
        "running unhealthy",
        SETTLED,
        PassOutcome(plan=PLAN, container=container(health="unhealthy")),
        Expect(
            "Unhealthy",
            ("False", "ContainerUnhealthy"),
            SUCCESS,
            container="running",
            endpoint=SETTLED_ENDPOINT,
        ),
    ),
    (
        "tier 4 running: fixed endpoint",
        EMPTY,
        PassOutcome(plan=TIER4, container=container(TIER4, host_port=None)),
        Expect(
            "Running",
            ("True", "ContainerRunning"),
            SUCCESS,
            container="running",
            endpoint="http://127.0.0.1:8000",
        ),
    ),
    (
        "tier 4 running: fixed endpoint whatever the host port",
        EMPTY,
        PassOutcome(plan=TIER4, container=container(TIER4, host_port=40001)),
        Expect(
            "Running",
            ("True", "ContainerRunning"),
            SUCCESS,
            container="running",
            endpoint="http://127.0.0.1:8000",
        ),
    ),
    (
        "running without a published port: no endpoint",
        SETTLED,
        PassOutcome(plan=PLAN, container=container(host_port=None)),
        Expect("Running", ("True", "ContainerRunning"), SUCCESS, container="running"),
    ),
    # -- a container from a previous configuration -----------------------------------------------------
    (
        "outdated config hash",
        SETTLED,
        PassOutcome(plan=PLAN, container=outdated()),
        Expect(
            "Running", ("False", "ConfigOutdated"), SUCCESS, container="running", endpoint=SETTLED_ENDPOINT
        ),
    ),
    (
        "outdated config hash while the new image is pulled",
        SETTLED,
        PassOutcome(plan=PLAN, container=outdated(), progressing=PULLING),
        Expect(
            "Running",
            ("False", "ConfigOutdated"),
            SUCCESS,
            reconciling="Pulling",
            container="running",
            endpoint=SETTLED_ENDPOINT,
        ),
    ),
    # -- failures retried with backoff -----------------------------------------------------------------
    (
        "error without a container keeps the last seen container and endpoint",
        SETTLED,
        PassOutcome(plan=PLAN, error=FAILED),
        Expect(
            "Running",
            ("True", "ContainerRunning"),
            ("False", "ReconcileError"),
            container="running",
            endpoint=SETTLED_ENDPOINT,
        ),
    ),
    (
        "error with an observed container reports that one",
        SETTLED,
        PassOutcome(
            plan=PLAN, container=container(state="exited", health=None, host_port=None), error=FAILED
        ),
        Expect("Exited", ("False", "ContainerExited"), ("False", "ReconcileError"), container="exited"),
    ),
    (
        "error on first visit",
        EMPTY,
        PassOutcome(plan=PLAN, error=FAILED),
        Expect("Pending", ("False", "ReconcileError"), ("False", "ReconcileError")),
    ),
    (
        "docker unavailable keeps the last seen container, readiness unknown",
        SETTLED,
        PassOutcome(plan=PLAN, error=NO_DOCKER),
        Expect(
            "Running",
            ("Unknown", "HostUnavailable"),
            ("False", "DockerUnavailable"),
            container="running",
            endpoint=SETTLED_ENDPOINT,
        ),
    ),
    (
        "docker unavailable on first visit",
        EMPTY,
        PassOutcome(plan=PLAN, error=NO_DOCKER),
        Expect("Pending", ("Unknown", "HostUnavailable"), ("False", "DockerUnavailable")),
    ),
    # -- stalled ---------------------------------------------------------------------------------------
    (
        "stalled on first visit",
        EMPTY,
        PassOutcome(plan=PLAN, stalled=NO_IMAGE),
        Expect("Failed", ("False", "ImageNotFound"), ("False", "ReconcileError"), stalled="ImageNotFound"),
    ),
    (
        "stalled without a plan (invalid spec)",
        SETTLED,
        PassOutcome(stalled=Cause(Reason.INVALID_SPEC, "bad")),
        Expect("Failed", ("False", "InvalidSpec"), ("False", "ReconcileError"), stalled="InvalidSpec"),
    ),
    (
        "stalled while an old container still runs",
        SETTLED,
        PassOutcome(plan=PLAN, container=outdated(), stalled=NO_IMAGE),
        Expect(
            "Failed",
            ("False", "ImageNotFound"),
            ("False", "ReconcileError"),
            stalled="ImageNotFound",
            container="running",
            endpoint=SETTLED_ENDPOINT,
        ),
    ),
    (
        "stalled while progressing shows only Stalled",
        EMPTY,
        PassOutcome(plan=PLAN, progressing=PULLING, stalled=NO_IMAGE),
        Expect("Failed", ("False", "ImageNotFound"), ("False", "ReconcileError"), stalled="ImageNotFound"),
    ),
    # -- suspended -------------------------------------------------------------------------------------
    (
        "suspended, container stopped",
        SETTLED,
        PassOutcome(container=container(state="exited", health=None), suspended=True),
        Expect("Suspended", ("False", "Suspended"), ("True", "ReconcilePaused")),
    ),
    (
        "suspended on first visit",
        EMPTY,
        PassOutcome(suspended=True),
        Expect("Suspended", ("False", "Suspended"), ("True", "ReconcilePaused")),
    ),
    (
        "suspended, the stop failed",
        SETTLED,
        PassOutcome(error=FAILED, suspended=True),
        Expect("Suspended", ("False", "Suspended"), ("False", "ReconcileError")),
    ),
    # -- deleting --------------------------------------------------------------------------------------
    (
        "deleting keeps the last seen container",
        SETTLED,
        PassOutcome(deleting=True),
        Expect(
            "Terminating",
            ("False", "Deleting"),
            SUCCESS,
            reconciling="Deleting",
            container="running",
            endpoint=SETTLED_ENDPOINT,
        ),
    ),
    (
        "deleting, a removal failed",
        SETTLED,
        PassOutcome(deleting=True, error=FAILED),
        Expect(
            "Terminating",
            ("False", "Deleting"),
            ("False", "ReconcileError"),
            reconciling="Deleting",
            container="running",
            endpoint=SETTLED_ENDPOINT,
        ),
    ),
    (
        "deleting while docker is unavailable",
        SETTLED,
        PassOutcome(deleting=True, error=NO_DOCKER),
        Expect(
            "Terminating",
            ("False", "Deleting"),
            ("False", "DockerUnavailable"),
            reconciling="Deleting",
            container="running",
            endpoint=SETTLED_ENDPOINT,
        ),
    ),
]


@pytest.mark.parametrize(
    ("previous", "outcome", "expected"), [pytest.param(*row[1:], id=row[0]) for row in OUTCOMES]
)
def test_build_status_table(previous: WorkspaceStatus, outcome: PassOutcome, expected: Expect) -> None:
    assert summary(build(outcome, previous)) == expected


def test_the_kept_container_is_the_previous_one_exactly() -> None:
    previous = SETTLED.model_copy(update={"container": SETTLED.container, "endpoint": "http://127.0.0.1:1"})
    for outcome in (PassOutcome(plan=PLAN, error=FAILED), PassOutcome(deleting=True)):
        status = build(outcome, previous)
        assert status.container == previous.container
        assert status.endpoint == "http://127.0.0.1:1"


def test_a_failed_pass_that_looked_again_reports_the_container_as_it_is() -> None:
    """A failed restart of a container stopped by hand: the status shows it exited, not the running one
    the previous pass saw."""
    stopped = container(state="exited", health=None, exit_code=0)
    status = build(PassOutcome(plan=PLAN, container=stopped, observed=True, error=FAILED), SETTLED)
    assert status.container is not None
    assert status.container.state == "exited"
    assert summary(status).ready[0] == "False"
    gone = build(PassOutcome(plan=PLAN, observed=True, error=FAILED), SETTLED)
    assert gone.container is None
    assert gone.endpoint is None


def test_without_an_error_a_missing_container_is_reported_gone() -> None:
    status = build(PassOutcome(plan=PLAN), SETTLED)
    assert status.container is None
    assert status.endpoint is None
    assert summary(status).ready == ("False", "ContainerMissing")


def test_every_condition_carries_the_generation_and_the_status_too() -> None:
    status = build(PassOutcome(plan=PLAN, container=outdated(), progressing=PULLING), SETTLED, generation=7)
    assert status.observed_generation == 7
    assert {c.observed_generation for c in status.conditions} == {7}


def test_transition_times_move_only_with_the_status() -> None:
    again = build(PassOutcome(plan=PLAN, container=container()), SETTLED, now=T1)
    assert again == SETTLED
    failing = build(PassOutcome(plan=PLAN, error=FAILED), SETTLED, now=T1)
    ready, synced = (find_condition(failing.conditions, kind) for kind in ("Ready", "Synced"))
    assert ready is not None
    assert ready.last_transition_time == T0_TEXT
    assert synced is not None
    assert synced.last_transition_time == T1_TEXT


@pytest.mark.parametrize(
    ("plan", "previous_url", "expected"),
    [
        pytest.param(PLAN, None, "http://ws-3f2a9c1e-8b7:8000", id="from the plan"),
        pytest.param(TIER4, "http://ws-3f2a9c1e-8b7:8000", None, id="tier 4 has none"),
        pytest.param(None, "http://ws-3f2a9c1e-8b7:8000", "http://ws-3f2a9c1e-8b7:8000", id="no plan: kept"),
    ],
)
def test_internal_url(plan: ContainerPlan | None, previous_url: str | None, expected: str | None) -> None:
    previous = SETTLED.model_copy(update={"internal_url": previous_url})
    assert build(PassOutcome(plan=plan, deleting=plan is None), previous).internal_url == expected


def test_the_image_digest_is_reported_with_the_container() -> None:
    digest = "ghcr.io/molecule-ai/workspace-template-langgraph@sha256:" + "b" * 64
    status = build(PassOutcome(plan=PLAN, container=container(), image_digest=digest))
    assert status.container is not None
    assert status.container.image_digest == digest


# --- echoes of handled requests -------------------------------------------------------------------


RESTART_PLAN = make_plan({"restartRequestedAt": "restart-2"})
RESTARTED = SETTLED.model_copy(update={"last_handled_restart_at": "restart-1"})


@pytest.mark.parametrize(
    ("outcome", "echoed"),
    [
        pytest.param(
            PassOutcome(plan=RESTART_PLAN, container=container(RESTART_PLAN)),
            "restart-2",
            id="running new hash",
        ),
        pytest.param(
            PassOutcome(plan=RESTART_PLAN, container=container()), "restart-1", id="running old hash"
        ),
        pytest.param(PassOutcome(plan=RESTART_PLAN, progressing=CREATING), "restart-1", id="no container"),
        pytest.param(
            PassOutcome(plan=RESTART_PLAN, error=FAILED), "restart-1", id="error, old container kept"
        ),
        pytest.param(PassOutcome(plan=RESTART_PLAN, stalled=NO_IMAGE), "restart-1", id="stalled"),
        pytest.param(PassOutcome(deleting=True), "restart-1", id="deleting"),
    ],
)
def test_last_handled_restart_at_is_echoed_once_the_container_has_the_plans_hash(
    outcome: PassOutcome, echoed: str
) -> None:
    assert build(outcome, RESTARTED).last_handled_restart_at == echoed


@pytest.mark.parametrize(
    ("requested", "echoed"),
    [
        pytest.param("reconcile-2", "reconcile-2", id="requested"),
        pytest.param(None, "reconcile-1", id="kept"),
    ],
)
def test_last_handled_reconcile_at_echoes_the_annotation(requested: str | None, echoed: str) -> None:
    previous = SETTLED.model_copy(update={"last_handled_reconcile_at": "reconcile-1"})
    status = build(PassOutcome(plan=PLAN, container=container()), previous, reconcile_requested_at=requested)
    assert status.last_handled_reconcile_at == echoed


@pytest.mark.parametrize(
    ("handled", "expected"),
    [
        pytest.param("reset-2", SessionStatus(last_reset_handled="reset-2"), id="handled now"),
        pytest.param(None, SessionStatus(last_reset_handled="reset-1"), id="kept"),
    ],
)
def test_session_last_reset_handled(handled: str | None, expected: SessionStatus) -> None:
    previous = SETTLED.model_copy(update={"session": SessionStatus(last_reset_handled="reset-1")})
    status = build(PassOutcome(plan=PLAN, container=container(), session_handled=handled), previous)
    assert status.session == expected


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        pytest.param("alice-token", "alice-token", id="from this pass"),
        pytest.param(None, "alice-auth-token", id="carried over"),
    ],
)
def test_auth_token_secret_name(secret: str | None, expected: str) -> None:
    previous = SETTLED.model_copy(update={"auth_token_secret_name": "alice-auth-token"})
    status = build(PassOutcome(plan=PLAN, container=container(), token_secret=secret), previous)
    assert status.auth_token_secret_name == expected


# --- interim status (during a pull) ----------------------------------------------------------------


IN_PROGRESS = ("Unknown", "Progressing")


def test_interim_status_after_a_failed_pass_claims_neither_the_failure_nor_a_success() -> None:
    failed = build(PassOutcome(plan=PLAN, error=FAILED), SETTLED, now=T0, reconcile_requested_at="r1")
    interim = interim_status(
        generation=2, previous=failed, outcome=PassOutcome(plan=PLAN, progressing=PULLING), now=T1
    )
    synced = find_condition(interim.conditions, ConditionType.SYNCED)
    assert synced is not None
    assert (synced.status, synced.reason) == IN_PROGRESS
    assert synced.observed_generation == 2
    assert "generation 2" in synced.message
    assert synced.last_transition_time == format_time(T1)
    assert summary(interim).reconciling == "Pulling"
    assert summary(interim).ready == ("Unknown", "Pulling")
    assert interim.last_handled_reconcile_at == "r1"
    assert [c.type for c in interim.conditions] == [
        c.type for c in build(PassOutcome(plan=PLAN, progressing=PULLING), failed, generation=2).conditions
    ]


def test_interim_status_of_an_outdated_container_shows_pulling() -> None:
    interim = interim_status(
        generation=2,
        previous=SETTLED,
        outcome=PassOutcome(plan=PLAN, container=outdated(), progressing=PULLING),
        now=T1,
    )
    assert summary(interim) == Expect(
        "Running",
        ("False", "ConfigOutdated"),
        IN_PROGRESS,
        reconciling="Pulling",
        container="running",
        endpoint=SETTLED_ENDPOINT,
    )


def test_interim_status_on_first_visit_says_synced_is_not_known_yet() -> None:
    """No pass has finished: Synced=True would claim the spec was applied."""
    interim = interim_status(
        generation=1, previous=EMPTY, outcome=PassOutcome(plan=PLAN, progressing=PULLING), now=T1
    )
    assert summary(interim) == Expect("Creating", ("Unknown", "Pulling"), IN_PROGRESS, reconciling="Pulling")


# --- status_changed -------------------------------------------------------------------------------


def condition(kind: str, status: str = "True", time: str = T0_TEXT) -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": "R", "message": "", "lastTransitionTime": time}


@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [
        pytest.param(None, None, False, id="none and none"),
        pytest.param(None, {}, False, id="none and empty"),
        pytest.param({"phase": None}, {}, False, id="null equals missing"),
        pytest.param({"conditions": []}, {}, False, id="empty list equals missing"),
        pytest.param({"container": {}}, None, False, id="empty object equals missing"),
        pytest.param({"session": {"lastResetHandled": None}}, {}, False, id="object of nulls equals missing"),
        pytest.param({"phase": "Running"}, {"phase": "Running"}, False, id="same"),
        pytest.param(
            {"conditions": [condition("Ready"), condition("Synced")]},
            {"conditions": [condition("Synced"), condition("Ready")]},
            False,
            id="conditions reordered",
        ),
        pytest.param(
            {"conditions": [condition("Ready")]},
            {"conditions": (condition("Ready"),)},
            False,
            id="tuple equals list",
        ),
        pytest.param(
            {"conditions": [condition("Ready", time=T0_TEXT)]},
            {"conditions": [condition("Ready", time=T1_TEXT)]},
            True,
            id="a moved timestamp",
        ),
        pytest.param(
            {"conditions": [condition("Ready")]},
            {"conditions": [condition("Ready", status="False")]},
            True,
            id="a condition status",
        ),
        pytest.param(
            {"conditions": [condition("Ready"), condition("Reconciling")]},
            {"conditions": [condition("Ready")]},
            True,
            id="a condition removed",
        ),
        pytest.param({"phase": "Running"}, {"phase": "Starting"}, True, id="phase"),
        pytest.param({"endpoint": "http://127.0.0.1:1"}, {}, True, id="endpoint removed"),
        pytest.param({}, {"container": {"restartCount": 0}}, True, id="a zero is a value"),
        pytest.param({}, {"container": {"oomKilled": False}}, True, id="false is a value"),
    ],
)
def test_status_changed(old: dict[str, Any] | None, new: dict[str, Any] | None, changed: bool) -> None:
    assert status_changed(old, new) is changed
    assert status_changed(new, old) is changed


def test_status_changed_is_false_for_a_pass_that_changes_nothing() -> None:
    again = build(PassOutcome(plan=PLAN, container=container()), SETTLED, now=T1)
    assert not status_changed(SETTLED.to_dict(), again.to_dict())
    moved = build(PassOutcome(plan=PLAN, error=FAILED), SETTLED, now=T1)
    assert status_changed(SETTLED.to_dict(), moved.to_dict())


# --- warnings -------------------------------------------------------------------------------------


STALLED = build(PassOutcome(plan=PLAN, stalled=NO_IMAGE), SETTLED)
FAILING = build(PassOutcome(plan=PLAN, error=FAILED), SETTLED)
DOCKER_DOWN = build(PassOutcome(plan=PLAN, error=NO_DOCKER), SETTLED)

WARNINGS: list[tuple[str, WorkspaceStatus, WorkspaceStatus, list[Cause]]] = [
    ("settled stays settled", SETTLED, SETTLED, []),
    ("becomes stalled: one warning", SETTLED, STALLED, [NO_IMAGE]),
    (
        "stalled on first visit: one warning",
        EMPTY,
        build(PassOutcome(plan=PLAN, stalled=NO_IMAGE)),
        [NO_IMAGE],
    ),
    ("stays stalled: none", STALLED, build(PassOutcome(plan=PLAN, stalled=NO_IMAGE), STALLED), []),
    (
        "stalled for another reason: one warning",
        STALLED,
        build(PassOutcome(plan=PLAN, stalled=NO_AUTH), STALLED),
        [NO_AUTH],
    ),
    ("starts failing: one warning", SETTLED, FAILING, [FAILED]),
    ("keeps failing: none", FAILING, build(PassOutcome(plan=PLAN, error=FAILED), FAILING), []),
    (
        "fails for another reason: one warning",
        FAILING,
        build(PassOutcome(plan=PLAN, error=NO_DOCKER), FAILING),
        [NO_DOCKER],
    ),
    ("docker unavailable: one warning", SETTLED, DOCKER_DOWN, [NO_DOCKER]),
    ("recovers: none", FAILING, build(PassOutcome(plan=PLAN, container=container()), FAILING), []),
    ("stall clears: none", STALLED, build(PassOutcome(plan=PLAN, container=container()), STALLED), []),
    (
        "a failure right after a stall: one warning",
        STALLED,
        build(PassOutcome(plan=PLAN, error=FAILED), STALLED),
        [FAILED],
    ),
    ("first visit creating: none", EMPTY, build(PassOutcome(plan=PLAN, progressing=CREATING)), []),
    ("suspended: none", SETTLED, build(PassOutcome(suspended=True), SETTLED), []),
]


@pytest.mark.parametrize(
    ("previous", "status", "expected"), [pytest.param(*row[1:], id=row[0]) for row in WARNINGS]
)
def test_warnings(previous: WorkspaceStatus, status: WorkspaceStatus, expected: list[Cause]) -> None:
    assert warnings(previous, status) == expected


# --- is_ready, is_stalled, previous_status ---------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "ready", "stalled"),
    [
        pytest.param(EMPTY, False, False, id="empty"),
        pytest.param(SETTLED, True, False, id="running"),
        pytest.param(STALLED, False, True, id="stalled"),
        pytest.param(DOCKER_DOWN, False, False, id="ready unknown"),
        pytest.param(
            build(PassOutcome(plan=PLAN, container=outdated()), SETTLED), False, False, id="outdated"
        ),
    ],
)
def test_is_ready_and_is_stalled(status: WorkspaceStatus, ready: bool, stalled: bool) -> None:
    assert is_ready(status) is ready
    assert is_stalled(status) is stalled


def test_previous_status_reads_the_stored_status() -> None:
    stored = build(
        PassOutcome(plan=PLAN, container=container(), token_secret="alice-auth-token", session_handled="s1"),
        reconcile_requested_at="r1",
    )
    assert previous_status(stored.to_dict()) == stored
    assert previous_status({"lastHandledRestartAt": "x", "internalURL": "http://a:1"}) == WorkspaceStatus(
        last_handled_restart_at="x", internal_url="http://a:1"
    )


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({}, id="empty"),
        pytest.param({"phase": "Exploded"}, id="unknown phase"),
        pytest.param({"conditions": [{"type": "Ready"}]}, id="incomplete condition"),
        pytest.param({"observedGeneration": -1}, id="negative generation"),
        pytest.param({"container": "ws-1"}, id="container not an object"),
    ],
)
def test_a_status_that_does_not_parse_counts_as_none(raw: dict[str, Any]) -> None:
    assert previous_status(raw) == WorkspaceStatus()


# --- container_status -----------------------------------------------------------------------------


def test_container_status_of_a_running_container() -> None:
    running = container(finished_at=T0 - timedelta(hours=1), restart_count=2, image_id="")
    assert container_status(running, "repo@sha256:" + "c" * 64) == ContainerStatus(
        name="ws-3f2a9c1e-8b7",
        id="c0ffee0123456789",
        image="ghcr.io/molecule-ai/workspace-template-langgraph:latest",
        image_id=None,
        image_digest="repo@sha256:" + "c" * 64,
        state="running",
        health="healthy",
        started_at=T0_TEXT,
        finished_at=None,
        restart_count=2,
        exit_code=None,
        oom_killed=None,
        config_hash=PLAN.config_hash,
    )


def test_container_status_of_an_exited_container_reports_when_and_how_it_ended() -> None:
    exited = container(
        state="exited", health=None, finished_at=T1, exit_code=137, oom_killed=True, restart_count=0
    )
    status = container_status(exited, None)
    assert status is not None
    assert (status.started_at, status.finished_at) == (T0_TEXT, T1_TEXT)
    assert (status.exit_code, status.oom_killed, status.restart_count) == (137, True, 0)
    assert status.image_id == "sha256:" + "a" * 64
    assert status.image_digest is None


def test_container_status_without_a_hash_label_or_times() -> None:
    bare = container(labels={}, started_at=None, finished_at=None)
    status = container_status(bare, None)
    assert status is not None
    assert (status.config_hash, status.started_at, status.finished_at) == (None, None, None)


def test_container_status_of_nothing_is_none() -> None:
    assert container_status(None, "repo@sha256:" + "c" * 64) is None
