"""The Workspace's status from what one pass learned: a pure function, and what its changes announce.

``build_status`` turns a ``PassOutcome`` into the whole ``WorkspaceStatus`` (conditions from
``conditions``, the container as last seen, endpoints, echoes of handled requests). ``status_changed``
says whether writing it would change anything (no write when not), and ``warnings`` which transitions
deserve a Warning Event: a Workspace that becomes Stalled or starts failing warns once, not every pass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.api.workspace import (
    AdoptedStatus,
    ContainerStatus,
    HibernationStatus,
    ImageStatus,
    SessionStatus,
    TemplateStatus,
    WorkspaceStatus,
)
from controller.core import labels, naming
from controller.core.causes import Cause, Reason
from controller.core.conditions import (
    ConditionType,
    ConditionUpdate,
    ReconcileOutcome,
    compute_conditions,
    compute_phase,
    find_condition,
    format_time,
    set_condition,
)
from controller.core.plan import ContainerPlan
from controller.core.progress import deadline_exceeded, next_rollout
from controller.port.values import ObservedContainer


@dataclass(frozen=True)
class PassOutcome:
    """What one pass (or a finalizer) saw and did, as the status needs it.

    container: the container as observed at the end of the pass; None when absent or not observed.
    observed: whether the pass knows how the container is now (`container` None then means: none).
    progressing: work started and not finished (Creating, Pulling): sets Reconciling.
    error: the pass failed and is retried with backoff: sets Synced=False.
    stalled: retrying cannot help until the spec or a dependency changes: sets Stalled.
    token_secret: the Secret the auth token came from; session_handled: the session reset token the
        container now reflects.
    """

    plan: ContainerPlan | None = None
    container: ObservedContainer | None = None
    observed: bool = False
    image_digest: str | None = None
    progressing: Cause | None = None
    error: Cause | None = None
    stalled: Cause | None = None
    token_secret: str | None = None
    session_handled: str | None = None
    suspended: bool = False
    paused: Cause | None = None
    """Why nothing runs while `suspended`, when it is not spec.suspend (Expired)."""
    deleting: bool = False
    host: str | None = None
    """The DockerHost the Workspace is on (None: not placed yet, or not known in this pass)."""
    adopted: AdoptedStatus | None = None
    """What the Workspace has taken over from the Go provisioner, when this pass took something over."""
    serving_previous: bool = False
    """A StartFirst rollout: the running container is the previous configuration's, serving while the
    replacement starts (or after it failed): Ready speaks for it."""
    image: ImageStatus | None = None
    image_known: bool = False
    """Whether `image` is this pass's word on status.image (else the previous one is kept)."""
    hibernation: HibernationStatus | None = None
    hibernation_known: bool = False
    """Whether `hibernation` is this pass's word on status.hibernation (else the previous one is kept)."""
    gateway_port: int | None = None
    """The host port an isolated agent's gateway publishes (its endpoint); None otherwise."""
    gateway_checked: bool = False
    """Whether the pass got as far as the gateway (else what the previous status says of it stands)."""
    runtime: str | None = None
    tier: int | None = None
    """The agent runtime and tier the spec resolved to (None: not resolved by this pass; kept)."""
    template: TemplateStatus | None = None
    template_known: bool = False
    """Whether `template` is this pass's word on the WorkspaceTemplate generation the spec was resolved
    with (None: it names none); else the previous one is kept (it could not be resolved, a deletion)."""


def build_status(
    *,
    generation: int,
    previous: WorkspaceStatus,
    outcome: PassOutcome,
    reconcile_requested_at: str | None,
    now: datetime,
) -> WorkspaceStatus:
    """The status after a pass; ``previous`` is the last one reported (its timestamps and echoes carry on).

    What the pass could not see is kept from ``previous`` rather than reported gone: the container and
    endpoint when a failed pass could not observe them (Docker did not answer), or while the Workspace
    is being deleted.
    """
    plan = outcome.plan
    keep_last_seen = outcome.deleting or (outcome.error is not None and not outcome.observed)
    container = container_status(outcome.container, outcome.image_digest)
    if container is None and keep_last_seen:
        container = previous.container
    conditions_input = ReconcileOutcome(
        container=container,
        desired_config_hash=plan.config_hash if plan else None,
        readiness=plan.readiness if plan else None,
        serving_previous=outcome.serving_previous,
        suspended=outcome.suspended,
        paused=outcome.paused,
        deleting=outcome.deleting,
        progressing=outcome.progressing if _in_progress(container, plan) else None,
        error=outcome.error,
        stalled=outcome.stalled,
        gateway_missing=_gateway_missing(outcome),
    )
    conditions = compute_conditions(generation, conditions_input, previous.conditions, now)
    ready = find_condition(conditions, ConditionType.READY)
    rollout = next_rollout(
        previous.rollout,
        plan.config_hash if plan is not None and not outcome.suspended else None,
        # Ready for the plan's configuration: not the previous one's container still serving.
        ready is not None and ready.status == "True" and not outcome.serving_previous,
        now,
    )
    if plan is not None and ready is not None and _deadline_applies(outcome) and not outcome.serving_previous:
        late = deadline_exceeded(rollout, plan.progress_deadline_seconds, now, ready.message)
        if late is not None:
            conditions_input = dataclasses.replace(conditions_input, stalled=late)
            conditions = compute_conditions(generation, conditions_input, previous.conditions, now)
    endpoint = previous.endpoint if keep_last_seen else None
    if plan is not None and (plan.gateway is not None or outcome.gateway_port):
        # Isolated (or an isolated agent still serving while its open replacement starts): reached
        # through its gateway, whose port is the endpoint.
        if outcome.container is not None:
            port = outcome.gateway_port
            if outcome.gateway_checked:
                endpoint = naming.endpoint_url(naming.LOOPBACK, port) if port else None
            else:
                endpoint = previous.endpoint
    elif plan is not None and outcome.container is not None:
        endpoint = plan.fixed_endpoint or (
            naming.endpoint_url(naming.LOOPBACK, outcome.container.host_port)
            if outcome.container.host_port
            else None
        )
    running_current = plan is not None and container is not None and container.config_hash == plan.config_hash
    return WorkspaceStatus(
        observed_generation=generation,
        conditions=tuple(conditions),
        phase=compute_phase(conditions_input),
        container=None if outcome.suspended else container,
        endpoint=None if outcome.suspended else endpoint,
        # Held once its container is ours: a pass stalled on a conflict claims nothing.
        workspace_id=plan.workspace.workspace_id
        if plan is not None and outcome.container is not None
        else previous.workspace_id,
        internal_url=plan.internal_url if plan else previous.internal_url,
        # A plan says which Secret the token came from, or ("") that none is written any more.
        auth_token_secret_name=(outcome.token_secret or None)
        if outcome.token_secret is not None
        else previous.auth_token_secret_name,
        adopted=outcome.adopted or previous.adopted,
        rollout=rollout,
        image=outcome.image if outcome.image_known else previous.image,
        session=SessionStatus(last_reset_handled=outcome.session_handled)
        if outcome.session_handled
        else previous.session,
        last_handled_restart_at=plan.restart_requested_at
        if plan is not None and running_current
        else previous.last_handled_restart_at,
        last_handled_reconcile_at=reconcile_requested_at or previous.last_handled_reconcile_at,
        host=outcome.host or previous.host,
        template=outcome.template if outcome.template_known else previous.template,
        hibernation=outcome.hibernation if outcome.hibernation_known else previous.hibernation,
        runtime=outcome.runtime or previous.runtime,
        tier=outcome.tier or previous.tier,
    )


def _deadline_applies(outcome: PassOutcome) -> bool:
    """The deadline judges a Workspace making no progress of its own: not one stalled already, suspended,
    being deleted, or whose host does not answer (nobody can tell how it is)."""
    host_silent = outcome.error is not None and outcome.error.reason == Reason.DOCKER_UNAVAILABLE
    return outcome.stalled is None and not outcome.suspended and not outcome.deleting and not host_silent


def interim_status(
    *, generation: int, previous: WorkspaceStatus, outcome: PassOutcome, now: datetime
) -> WorkspaceStatus:
    """The status shown while long work (a pull) goes on in the middle of a pass.

    Synced says whether the last pass applied the spec; while this one has not finished, nobody knows:
    Unknown, so neither a success nor an earlier failure is claimed for the generation being applied.
    """
    status = build_status(
        generation=generation, previous=previous, outcome=outcome, reconcile_requested_at=None, now=now
    )
    in_progress = ConditionUpdate(
        ConditionType.SYNCED,
        "Unknown",
        Reason.PROGRESSING,
        f"the reconcile of generation {generation} is under way",
        generation,
    )
    return status.model_copy(update={"conditions": tuple(set_condition(status.conditions, in_progress, now))})


def _in_progress(container: ContainerStatus | None, plan: ContainerPlan | None) -> bool:
    """Work in progress shows while the container is missing, not running, or about to be replaced."""
    if container is None or container.state != "running":
        return True
    return plan is not None and container.config_hash != plan.config_hash


def container_status(container: ObservedContainer | None, digest: str | None) -> ContainerStatus | None:
    if container is None:
        return None
    return ContainerStatus(
        name=container.name,
        id=container.id,
        image=container.image,
        image_id=container.image_id or None,
        image_digest=digest,
        state=container.state,
        health=container.health,
        started_at=format_time(container.started_at) if container.started_at else None,
        finished_at=format_time(container.finished_at)
        if container.finished_at and container.state != "running"
        else None,
        restart_count=container.restart_count,
        exit_code=container.exit_code,
        oom_killed=container.oom_killed,
        config_hash=labels.read_config_hash(container.labels),
    )


def status_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> bool:
    """Whether writing ``new`` over ``old`` would change the stored status.

    Compared semantically: a missing field equals a null or empty one, and list-map entries (conditions)
    compare by key, not position. No field is ignored, so a status that only moves a timestamp still counts
    as a change; ``compute_conditions`` is what keeps timestamps still when nothing happened.
    """
    return bool(_canonical(old or {}) != _canonical(new or {}))


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        # An absent field, a null and an empty list or object all mean "nothing here".
        canonical = {key: _canonical(item) for key, item in value.items()}
        return {key: item for key, item in canonical.items() if item not in (None, [], {})}
    if isinstance(value, list | tuple):
        items = [_canonical(item) for item in value]
        if items and all(isinstance(item, dict) and isinstance(item.get("type"), str) for item in items):
            return sorted(items, key=lambda item: str(item["type"]))
        return items
    return value


def warnings(previous: WorkspaceStatus, status: WorkspaceStatus) -> list[Cause]:
    """The Warning Events a status change deserves: becoming Stalled, or Synced turning False (or changing
    its reason). A Stalled Workspace is also Synced=False with the same message: one Warning says it, and
    a failure that follows a stall is news even though Synced was False already."""
    stalled = find_condition(status.conditions, ConditionType.STALLED)
    was_stalled = find_condition(previous.conditions, ConditionType.STALLED) is not None
    kinds = (ConditionType.STALLED,) if stalled is not None else (ConditionType.STALLED, ConditionType.SYNCED)
    found: list[Cause] = []
    for kind in kinds:
        before = (
            None
            if kind == ConditionType.SYNCED and was_stalled
            else find_condition(previous.conditions, kind)
        )
        after = find_condition(status.conditions, kind)
        if after is None:
            continue
        failing = (kind == ConditionType.STALLED and after.status == "True") or (
            kind == ConditionType.SYNCED and after.status == "False"
        )
        if failing and (before is None or (before.status, before.reason) != (after.status, after.reason)):
            found.append(Cause(after.reason, after.message))
    return found


def is_ready(status: WorkspaceStatus) -> bool:
    ready = find_condition(status.conditions, ConditionType.READY)
    return ready is not None and ready.status == "True"


def is_stalled(status: WorkspaceStatus) -> bool:
    stalled = find_condition(status.conditions, ConditionType.STALLED)
    return stalled is not None and stalled.status == "True"


def previous_status(raw: Mapping[str, Any]) -> WorkspaceStatus:
    """The stored status as a model; one that does not parse (older, or edited by hand) counts as none."""
    try:
        return WorkspaceStatus.model_validate(raw)
    except ValueError:
        return WorkspaceStatus()


def _gateway_missing(outcome: PassOutcome) -> str | None:
    plan = outcome.plan
    if plan is None or plan.gateway is None or not outcome.gateway_checked or outcome.gateway_port:
        return None
    return (
        f"gateway {plan.gateway.container.name} does not run: the isolated agent {plan.name} cannot be "
        "reached"
    )
