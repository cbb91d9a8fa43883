"""The one action per pass: `decide` as a table over every observed state, and its helpers.

Pinned: the order of the rules (suspend, name conflict, missing, replacement, paused/created, crash loop,
exited, the rest), the exact Action values (why a container is replaced, write_files on a created one,
restart on an exited one, reset_session while a session reset is pending), the refused-configuration
retry window, ownership by instance label and uid, and the requeue while a container is in transition.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from controller.core import labels
from controller.core.causes import Cause, Reason
from controller.core.decide import (
    PROGRESS_REQUEUE,
    REJECTED_RETRY,
    STOP_GRACE,
    Action,
    Create,
    Denied,
    History,
    Keep,
    Observation,
    Rejection,
    Replace,
    Stall,
    Start,
    Stop,
    Suspend,
    Unpause,
    decide,
    follow_up,
    name_conflict,
    rejection,
    replacement,
)
from controller.core.identity import WorkspaceRef
from controller.core.plan import ContainerPlan
from controller.port.values import ContainerState, Health, ObservedContainer
from tests.support.plans import ALICE as REF
from tests.support.plans import UID, make_plan

CID = "c0ffee0123456789"
NOW = 1000.0


PLAN = make_plan()
CLAUDE = make_plan({"runtime": "claude-code", "session": {"resetRequestedAt": "reset-2"}})
# The same Workspace before reset-2 was requested: a requested reset changes the hash.
CLAUDE_BEFORE = make_plan({"runtime": "claude-code", "session": {"resetRequestedAt": "reset-1"}})
assert CLAUDE_BEFORE.config_hash != CLAUDE.config_hash
OTHER_PLAN = make_plan({"tier": 3})
assert OTHER_PLAN.config_hash != PLAN.config_hash


def container(
    plan: ContainerPlan = PLAN,
    state: ContainerState = "running",
    health: Health | None = None,
    **changes: Any,
) -> ObservedContainer:
    """A container created from `plan` (its labels, so its hash and owner, and its image)."""
    base = ObservedContainer(
        id=CID,
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
    )
    return dataclasses.replace(base, **changes)


def ours(state: ContainerState = "running", health: Health | None = None, **changes: Any) -> Observation:
    return Observation(container(PLAN, state, health, **changes), owned=True)


def claude(state: ContainerState = "running") -> Observation:
    return Observation(container(CLAUDE, state), owned=True)


def before_reset(state: ContainerState = "running") -> Observation:
    """A claude-code container created before the pending reset was requested."""
    return Observation(container(CLAUDE_BEFORE, state), owned=True)


def foreign(state: ContainerState = "running") -> Observation:
    return Observation(
        container(state=state, labels={"com.example.app": "db"}, image="postgres:16"), owned=False
    )


def with_hash(config_hash: str) -> dict[str, str]:
    return labels.with_config_hash(PLAN.container.labels, config_hash)


MISSING = Observation(None, owned=False)
NOTHING = History()
CRASH = Cause(Reason.CRASH_LOOP, "the agent restarted 6 times without staying up for 300s")
REFUSED = Cause(Reason.CONTAINER_REJECTED, "the Docker daemon refused to create ws-3f2a9c1e-8b7: cpus")
REFUSED_NOW = History(rejected=Rejection(PLAN.config_hash, NOW + 1.0, REFUSED))
REFUSED_OTHER_HASH = History(rejected=Rejection(OTHER_PLAN.config_hash, NOW + 1.0, REFUSED))
REFUSED_DUE = History(rejected=Rejection(PLAN.config_hash, NOW, REFUSED))
REFUSED_PAST = History(rejected=Rejection(PLAN.config_hash, NOW - 1.0, REFUSED))
CRASHING = History(crash_loop=CRASH)
RESET_HANDLED = History(session_reset_handled="reset-2")
OLDER_RESET_HANDLED = History(session_reset_handled="reset-1")
CONFLICT = Stall(name_conflict(PLAN.name))


DECISIONS: list[tuple[str, ContainerPlan | Suspend, Observation, History, Action]] = [
    # -- every observed state, nothing remembered ----------------------------------------------------
    # A container of ours renamed by hand is not under the Workspace's name: it is observed as missing
    # (the stray is dealt with at create time), so this row covers it too.
    ("missing -> create", PLAN, MISSING, NOTHING, Create()),
    ("created -> write files and start", PLAN, ours("created"), NOTHING, Start(CID, write_files=True)),
    ("running without healthcheck -> keep", PLAN, ours("running"), NOTHING, Keep()),
    ("running healthy -> keep", PLAN, ours("running", "healthy"), NOTHING, Keep()),
    ("running unhealthy -> keep", PLAN, ours("running", "unhealthy"), NOTHING, Keep()),
    ("running health starting -> keep", PLAN, ours("running", "starting"), NOTHING, Keep()),
    ("exited -> restart", PLAN, ours("exited", exit_code=1), NOTHING, Start(CID, restart=True)),
    ("dead -> replace", PLAN, ours("dead"), NOTHING, Replace(CID, "a dead container")),
    ("paused -> unpause", PLAN, ours("paused"), NOTHING, Unpause(CID)),
    (
        "exited, its starts failing -> replace",
        PLAN,
        ours("exited", exit_code=0),
        History(unstartable=CID),
        Replace(CID, "a container Docker cannot start"),
    ),
    (
        "created, its starts failing -> replace",
        PLAN,
        ours("created"),
        History(unstartable=CID),
        Replace(CID, "a container Docker cannot start"),
    ),
    ("running, once unstartable -> keep", PLAN, ours("running"), History(unstartable=CID), Keep()),
    (
        "exited, another was unstartable -> start",
        PLAN,
        ours("exited"),
        History(unstartable="x"),
        Start(CID, restart=True),
    ),
    ("restarting -> keep (docker restarts it)", PLAN, ours("restarting"), NOTHING, Keep()),
    ("removing -> keep", PLAN, ours("removing"), NOTHING, Keep()),
    ("unknown -> keep", PLAN, ours("unknown"), NOTHING, Keep()),
    # -- a container holding our name that is not ours: never touched --------------------------------
    ("foreign running -> name conflict", PLAN, foreign("running"), NOTHING, CONFLICT),
    ("foreign exited -> name conflict", PLAN, foreign("exited"), NOTHING, CONFLICT),
    ("foreign dead -> name conflict, not replaced", PLAN, foreign("dead"), NOTHING, CONFLICT),
    ("foreign with a crash loop -> name conflict", PLAN, foreign("running"), CRASHING, CONFLICT),
    ("foreign with a refusal pending -> name conflict", PLAN, foreign("running"), REFUSED_NOW, CONFLICT),
    # -- a container that does not reflect the plan ---------------------------------------------------
    (
        "swapped image with the right hash label -> replace",
        PLAN,
        ours(image="ghcr.io/molecule-ai/workspace-template-langgraph:hacked"),
        NOTHING,
        Replace(CID, "a swapped image"),
    ),
    (
        "another config hash -> replace",
        PLAN,
        ours(labels=with_hash(OTHER_PLAN.config_hash)),
        NOTHING,
        Replace(CID, "a changed configuration"),
    ),
    (
        "no config hash label -> replace",
        PLAN,
        ours(labels=dict(labels.workspace_labels("test", REF, "Delete"))),
        NOTHING,
        Replace(CID, "a changed configuration"),
    ),
    (
        "another hash and another image -> a changed configuration",
        PLAN,
        ours(labels=with_hash("0" * 64), image="busybox:latest"),
        NOTHING,
        Replace(CID, "a changed configuration"),
    ),
    (
        "dead with another hash -> a dead container",
        PLAN,
        ours("dead", labels=with_hash("0" * 64)),
        NOTHING,
        Replace(CID, "a dead container"),
    ),
    (
        "paused with another hash -> replace, not unpause",
        PLAN,
        ours("paused", labels=with_hash("0" * 64)),
        NOTHING,
        Replace(CID, "a changed configuration"),
    ),
    (
        "created with another hash -> replace, not start",
        PLAN,
        ours("created", labels=with_hash("0" * 64)),
        NOTHING,
        Replace(CID, "a changed configuration"),
    ),
    (
        "exited with another hash -> replace, not restart",
        PLAN,
        ours("exited", labels=with_hash("0" * 64)),
        NOTHING,
        Replace(CID, "a changed configuration"),
    ),
    # -- a configuration the daemon refused ------------------------------------------------------------
    ("refused, before retry_at -> stall with its cause", PLAN, MISSING, REFUSED_NOW, Stall(REFUSED)),
    ("refused, at retry_at -> create", PLAN, MISSING, REFUSED_DUE, Create()),
    ("refused, after retry_at -> create", PLAN, MISSING, REFUSED_PAST, Create()),
    ("refused another hash (spec changed) -> create at once", PLAN, MISSING, REFUSED_OTHER_HASH, Create()),
    ("refused but a container exists -> it is judged as usual", PLAN, ours(), REFUSED_NOW, Keep()),
    # -- crash loop under docker's restarts -----------------------------------------------------------
    ("crash loop running -> stall", PLAN, ours("running"), CRASHING, Stall(CRASH)),
    ("crash loop restarting -> stall", PLAN, ours("restarting"), CRASHING, Stall(CRASH)),
    ("crash loop exited -> stall, not restart", PLAN, ours("exited"), CRASHING, Stall(CRASH)),
    ("crash loop created -> start first", PLAN, ours("created"), CRASHING, Start(CID, write_files=True)),
    ("crash loop paused -> unpause first", PLAN, ours("paused"), CRASHING, Unpause(CID)),
    ("crash loop dead -> replace first", PLAN, ours("dead"), CRASHING, Replace(CID, "a dead container")),
    (
        "crash loop with another hash -> replace first",
        PLAN,
        ours("restarting", labels=with_hash("0" * 64)),
        CRASHING,
        Replace(CID, "a changed configuration"),
    ),
    ("crash loop but missing -> create", PLAN, MISSING, CRASHING, Create()),
    # -- suspended -------------------------------------------------------------------------------------
    ("suspend running -> stop", Suspend(), ours("running"), NOTHING, Stop(CID)),
    ("suspend restarting -> stop", Suspend(), ours("restarting"), NOTHING, Stop(CID)),
    ("suspend paused -> stop", Suspend(), ours("paused"), NOTHING, Stop(CID)),
    ("suspend crash-looping running -> stop", Suspend(), ours("running"), CRASHING, Stop(CID)),
    ("suspend exited -> keep", Suspend(), ours("exited"), NOTHING, Keep()),
    ("suspend created -> keep", Suspend(), ours("created"), NOTHING, Keep()),
    ("suspend dead -> keep", Suspend(), ours("dead"), NOTHING, Keep()),
    ("suspend missing -> keep", Suspend(), MISSING, NOTHING, Keep()),
    ("suspend missing with a refusal pending -> keep", Suspend(), MISSING, REFUSED_NOW, Keep()),
    ("suspend foreign running -> keep (never touched)", Suspend(), foreign("running"), NOTHING, Keep()),
    # -- session reset pending (claude-code, session.resetRequestedAt="reset-2") -----------------------
    (
        "reset pending, running -> replace with reset",
        CLAUDE,
        before_reset("running"),
        NOTHING,
        Replace(CID, "a session reset", reset_session=True),
    ),
    (
        "reset pending after an older reset -> replace with reset",
        CLAUDE,
        before_reset("running"),
        OLDER_RESET_HANDLED,
        Replace(CID, "a session reset", reset_session=True),
    ),
    (
        "reset pending, dead -> a session reset",
        CLAUDE,
        before_reset("dead"),
        NOTHING,
        Replace(CID, "a session reset", reset_session=True),
    ),
    (
        "reset pending, paused -> replace, not unpause",
        CLAUDE,
        before_reset("paused"),
        NOTHING,
        Replace(CID, "a session reset", reset_session=True),
    ),
    (
        "reset pending, crash loop -> replace, not stall",
        CLAUDE,
        before_reset("restarting"),
        CRASHING,
        Replace(CID, "a session reset", reset_session=True),
    ),
    (
        "reset not remembered but the container carries the plan's hash -> keep (never twice)",
        CLAUDE,
        claude("running"),
        OLDER_RESET_HANDLED,
        Keep(),
    ),
    ("reset pending, missing -> create with reset", CLAUDE, MISSING, NOTHING, Create(reset_session=True)),
    (
        "reset pending, foreign -> name conflict",
        CLAUDE,
        foreign(),
        NOTHING,
        Stall(name_conflict(CLAUDE.name)),
    ),
    (
        "reset pending, refused -> stall",
        CLAUDE,
        MISSING,
        History(rejected=Rejection(CLAUDE.config_hash, NOW + 1.0, REFUSED)),
        Stall(REFUSED),
    ),
    ("reset handled, running -> keep", CLAUDE, claude("running"), RESET_HANDLED, Keep()),
    ("reset handled, missing -> create without reset", CLAUDE, MISSING, RESET_HANDLED, Create()),
    ("reset handled, exited -> restart", CLAUDE, claude("exited"), RESET_HANDLED, Start(CID, restart=True)),
]


@pytest.mark.parametrize(
    ("desired", "observed", "history", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in DECISIONS],
)
def test_decide_table(
    desired: ContainerPlan | Suspend, observed: Observation, history: History, expected: Action
) -> None:
    assert decide(desired, observed, history, NOW) == expected


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"runtime": "langgraph", "session": {"resetRequestedAt": "reset-2"}}, id="langgraph"),
        pytest.param(
            {"runtime": "claude-code", "tier": 1, "session": {"resetRequestedAt": "reset-2"}},
            id="claude-code tier 1",
        ),
    ],
)
def test_a_reset_token_without_a_session_volume_resets_nothing(spec: dict[str, Any]) -> None:
    plan = make_plan(spec)
    assert plan.session_volume is None
    assert decide(plan, Observation(container(plan), owned=True), NOTHING, NOW) == Keep()
    assert decide(plan, MISSING, NOTHING, NOW) == Create()


def test_suspend_stops_with_the_grace_period() -> None:
    action = decide(Suspend(), ours("running"), NOTHING, NOW)
    assert action == Stop(CID, grace=10.0)
    assert STOP_GRACE == 10.0


def test_a_refusal_is_retried_after_rejected_retry_seconds() -> None:
    remembered = History(rejected=rejection(PLAN, REFUSED, NOW))
    assert decide(PLAN, MISSING, remembered, NOW) == Stall(REFUSED)
    assert decide(PLAN, MISSING, remembered, NOW + REJECTED_RETRY - 0.001) == Stall(REFUSED)
    assert decide(PLAN, MISSING, remembered, NOW + REJECTED_RETRY) == Create()
    assert decide(OTHER_PLAN, MISSING, remembered, NOW) == Create()


def test_rejection_remembers_the_hash_and_retries_five_minutes_later() -> None:
    assert REJECTED_RETRY == 300.0
    assert rejection(PLAN, REFUSED, 42.0) == Rejection(PLAN.config_hash, 342.0, REFUSED)


def test_name_conflict_names_the_container_and_the_remedy() -> None:
    assert name_conflict("ws-3f2a9c1e-8b7") == Cause(
        "NameConflict",
        "a container named ws-3f2a9c1e-8b7 exists that this controller does not own; "
        "remove or rename it and the workspace will be created",
    )


# --- Observation.of: ownership by instance label and uid --------------------------------------------


def _without(key: str) -> dict[str, str]:
    return {k: v for k, v in PLAN.container.labels.items() if k != key}


@pytest.mark.parametrize(
    ("container_labels", "instance", "uid", "owned"),
    [
        pytest.param(dict(PLAN.container.labels), "test", UID, True, id="our labels"),
        pytest.param(dict(PLAN.container.labels), "other", UID, False, id="another controller instance"),
        pytest.param(dict(PLAN.container.labels), "test", "another-uid", False, id="another workspace"),
        pytest.param(
            {**PLAN.container.labels, labels.MANAGED_LABEL: "false"}, "test", UID, False, id="unmanaged"
        ),
        pytest.param(_without(labels.INSTANCE_LABEL), "test", UID, False, id="no instance label"),
        pytest.param(_without(labels.UID_LABEL), "test", UID, False, id="no uid label"),
        pytest.param(_without(labels.NAME_LABEL), "test", UID, False, id="incomplete owner labels"),
        pytest.param({}, "test", UID, False, id="no labels"),
    ],
)
def test_observation_ownership(
    container_labels: dict[str, str], instance: str, uid: str, owned: bool
) -> None:
    observed = container(labels=container_labels)
    assert Observation.of(
        observed, instance=instance, workspace=WorkspaceRef(uid, "ns", "name")
    ) == Observation(observed, owned=owned)


def test_observation_of_no_container_is_missing_and_not_owned() -> None:
    assert Observation.of(None, instance="test", workspace=WorkspaceRef(UID, "ns", "name")) == Observation(
        None, owned=False
    )


def test_an_observed_container_of_another_workspace_is_a_name_conflict() -> None:
    other = WorkspaceRef(uid="99999999-8b7d-4e21-9a0f-123456789abc", namespace="team-b", name="bob")
    held = container(labels=labels.workspace_labels("test", other, "Delete"))
    observed = Observation.of(held, instance="test", workspace=WorkspaceRef(UID, "ns", "name"))
    assert decide(PLAN, observed, NOTHING, NOW) == CONFLICT


# --- replacement ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("observed", "why"),
    [
        pytest.param(container(), None, id="current"),
        pytest.param(container(state="dead"), "a dead container", id="dead"),
        pytest.param(container(labels=with_hash("0" * 64)), "a changed configuration", id="hash"),
        pytest.param(container(image="busybox:latest"), "a swapped image", id="image"),
        pytest.param(container(state="exited", exit_code=137), None, id="exited current"),
    ],
)
def test_replacement(observed: ObservedContainer, why: str | None) -> None:
    assert replacement(PLAN, observed) == why


# --- follow_up --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("observed", "seconds"),
    [
        pytest.param(None, None, id="missing"),
        pytest.param(container(state="created"), 2.0, id="created"),
        pytest.param(container(state="running", health="starting"), 2.0, id="running health starting"),
        pytest.param(container(state="running", health="healthy"), None, id="running healthy"),
        pytest.param(container(state="running", health="unhealthy"), None, id="running unhealthy"),
        pytest.param(container(state="running"), None, id="running without healthcheck"),
        pytest.param(container(state="exited"), None, id="exited"),
        pytest.param(container(state="restarting"), None, id="restarting"),
        pytest.param(container(state="paused"), None, id="paused"),
        pytest.param(container(state="dead"), None, id="dead"),
    ],
)
def test_follow_up(observed: ObservedContainer | None, seconds: float | None) -> None:
    assert follow_up(observed) == seconds
    assert PROGRESS_REQUEUE == 2.0


# --- Denied: a grant withdrawn after the container was made -----------------------------------------

DENIED_CAUSE = Cause(Reason.POLICY_DENIED, "tier 3 is not granted to namespace team-a: ...")
DENIED = Denied(DENIED_CAUSE)

DENIALS: list[tuple[str, Observation, History, Action]] = [
    ("running ours -> stop, reported", ours("running"), NOTHING, Stop(CID, because=DENIED_CAUSE)),
    ("restarting ours -> stop, reported", ours("restarting"), NOTHING, Stop(CID, because=DENIED_CAUSE)),
    ("paused ours -> stop, reported", ours("paused"), NOTHING, Stop(CID, because=DENIED_CAUSE)),
    ("crash-looping ours -> stop, reported", ours("running"), CRASHING, Stop(CID, because=DENIED_CAUSE)),
    (
        "ours with another hash -> stop, not replace",
        ours("running", labels=with_hash("0" * 64)),
        NOTHING,
        Stop(CID, because=DENIED_CAUSE),
    ),
    ("exited ours -> stall, not restart", ours("exited"), NOTHING, Stall(DENIED_CAUSE)),
    ("created ours -> stall, not start", ours("created"), NOTHING, Stall(DENIED_CAUSE)),
    ("dead ours -> stall, not replace", ours("dead"), NOTHING, Stall(DENIED_CAUSE)),
    ("missing -> stall, not create", MISSING, NOTHING, Stall(DENIED_CAUSE)),
    ("missing with a refusal pending -> stall with the denial", MISSING, REFUSED_NOW, Stall(DENIED_CAUSE)),
    ("foreign running -> stall, never touched", foreign("running"), NOTHING, Stall(DENIED_CAUSE)),
]


@pytest.mark.parametrize(
    ("observed", "history", "expected"), [pytest.param(*row[1:], id=row[0]) for row in DENIALS]
)
def test_decide_denied(observed: Observation, history: History, expected: Action) -> None:
    assert decide(DENIED, observed, history, NOW) == expected


def test_a_denied_stop_keeps_the_grace_period_and_a_suspend_reports_nothing() -> None:
    assert decide(DENIED, ours("running"), NOTHING, NOW) == Stop(CID, grace=STOP_GRACE, because=DENIED_CAUSE)
    assert decide(Suspend(), ours("running"), NOTHING, NOW) == Stop(CID, because=None)
