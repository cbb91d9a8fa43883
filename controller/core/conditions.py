"""Status conditions and phase, computed from what one reconcile pass observed and did.

The contract is kstatus's (what Flux, Argo CD and ``kubectl wait`` read):

- ``Ready`` (the agent container is usable) and ``Synced`` (the last pass applied the spec without error, as
  in Crossplane) are always present;
- ``Reconciling`` and ``Stalled`` are present only while True, and never both;
- the first visit reports ``Ready=Unknown`` with ``Reconciling=True``;
- every condition carries the generation it describes, and ``lastTransitionTime`` moves only when the
  status does, so a pass that changes nothing produces an identical status (and no write).

Everything is recomputed from the pass's outcome: a terminal condition clears as soon as the spec or a
dependency is fixed, never sticking until a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from controller.api.workspace import Condition, ConditionStatus, ContainerStatus, Phase
from controller.core.causes import Cause, Reason


class ConditionType(StrEnum):
    READY = "Ready"
    SYNCED = "Synced"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"


@dataclass(frozen=True)
class ReconcileOutcome:
    """What one reconcile pass saw and did, as the conditions need it.

    container: the container as observed at the end of the pass; None when absent or not observed.
    desired_config_hash: the plan's hash; a container created from another configuration is not Ready.
    progressing: work started and not finished (Creating, Pulling, Progressing): sets Reconciling.
    error: this pass failed and will be retried (ReconcileError, DockerUnavailable): sets Synced=False.
    stalled: retrying cannot help until something changes (ImageNotFound, ...): sets Stalled.
    """

    container: ContainerStatus | None = None
    desired_config_hash: str | None = None
    readiness: str | None = None
    """The spec's readiness check as messages name it; None: the image's own health check."""
    serving_previous: bool = False
    """StartFirst: the container of an older configuration serves while its replacement starts."""
    suspended: bool = False
    paused: Cause | None = None
    """Why nothing runs while `suspended`, when it is not spec.suspend (Expired)."""
    deleting: bool = False
    progressing: Cause | None = None
    error: Cause | None = None
    stalled: Cause | None = None
    gateway_missing: str | None = None
    """An isolated agent whose gateway does not run (it cannot be reached): why; None otherwise."""


@dataclass(frozen=True)
class ConditionUpdate:
    """A condition as computed, before lastTransitionTime is settled against the previous one."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    observed_generation: int | None = None


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with second precision, as metav1.Time serialises (naive values are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 time (as `format_time` writes it, and Kubernetes does; RFC 3339 also allows a lower-case
    `t` and `z`, which `fromisoformat` does not read); None when it is not one."""
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def find_condition(conditions: Sequence[Condition], condition_type: str) -> Condition | None:
    return next((c for c in conditions if c.type == condition_type), None)


def set_condition(existing: Sequence[Condition], new: ConditionUpdate, now: datetime) -> list[Condition]:
    """``existing`` with ``new`` put in place of any condition of its type (appended when absent).

    lastTransitionTime is kept when the status is unchanged, even if reason or message change.
    """
    previous = find_condition(existing, new.type)
    transition = (
        previous.last_transition_time
        if previous is not None and previous.status == new.status
        else format_time(now)
    )
    condition = Condition(
        type=new.type,
        status=new.status,
        reason=new.reason,
        message=new.message,
        last_transition_time=transition,
        observed_generation=new.observed_generation,
    )
    if previous is None:
        return [*existing, condition]
    return [condition if c.type == new.type else c for c in existing]


def remove_condition(existing: Sequence[Condition], condition_type: str) -> list[Condition]:
    return [c for c in existing if c.type != condition_type]


def compute_conditions(
    generation: int,
    outcome: ReconcileOutcome,
    previous: Sequence[Condition],
    now: datetime,
) -> list[Condition]:
    """The kstatus conditions for this pass, merged into ``previous`` (other condition types are kept)."""
    first_visit = find_condition(previous, ConditionType.READY) is None
    ready = _ready(outcome, first_visit)
    updates = [ready, _synced(outcome)]
    reconciling = _reconciling(outcome, first_visit, ready)
    if outcome.stalled is not None:
        updates.append(ConditionUpdate(ConditionType.STALLED, "True", *_cause(outcome.stalled)))
    elif reconciling is not None:
        updates.append(ConditionUpdate(ConditionType.RECONCILING, "True", *_cause(reconciling)))

    conditions = list(previous)
    for condition_type in (ConditionType.RECONCILING, ConditionType.STALLED):
        if all(update.type != condition_type for update in updates):
            conditions = remove_condition(conditions, condition_type)
    for update in updates:
        stamped = ConditionUpdate(update.type, update.status, update.reason, update.message, generation)
        conditions = set_condition(conditions, stamped, now)
    return conditions


def _cause(cause: Cause) -> tuple[str, str]:
    return cause.reason, cause.message


def _ready(outcome: ReconcileOutcome, first_visit: bool) -> ConditionUpdate:
    ready = ConditionType.READY
    if outcome.deleting:
        return ConditionUpdate(ready, "False", Reason.DELETING, "the Workspace is being deleted")
    if outcome.stalled is not None:
        # Whatever still runs does not reflect the spec, which cannot be realised.
        return ConditionUpdate(ready, "False", *_cause(outcome.stalled))
    if outcome.suspended:
        if outcome.paused is not None:
            return ConditionUpdate(ready, "False", *_cause(outcome.paused))
        return ConditionUpdate(ready, "False", Reason.SUSPENDED, "spec.suspend is true: no container runs")
    if outcome.error is not None and outcome.error.reason == Reason.DOCKER_UNAVAILABLE:
        # The container may well still run, but nobody can tell: Unknown, as for a pod on a lost node.
        return ConditionUpdate(ready, "Unknown", Reason.HOST_UNAVAILABLE, outcome.error.message)
    container = outcome.container
    if container is None:
        if outcome.error is not None:
            return ConditionUpdate(ready, "False", *_cause(outcome.error))
        if outcome.progressing is not None:
            return ConditionUpdate(ready, "Unknown", *_cause(outcome.progressing))
        if first_visit:
            return ConditionUpdate(ready, "Unknown", Reason.PROGRESSING, "the workspace is being provisioned")
        return ConditionUpdate(
            ready, "False", Reason.CONTAINER_MISSING, "the workspace container does not exist"
        )
    stale = outcome.desired_config_hash and container.config_hash != outcome.desired_config_hash
    if stale and not outcome.serving_previous:
        return ConditionUpdate(
            ready,
            "False",
            Reason.CONFIG_OUTDATED,
            f"container {container.name} runs a previous configuration and is being replaced",
        )
    verdict = _ready_from_container(container, outcome.readiness)
    if verdict.status == "True" and outcome.gateway_missing is not None:
        return ConditionUpdate(ready, "False", Reason.GATEWAY_NOT_RUNNING, outcome.gateway_missing)
    return verdict


def _ready_from_container(container: ContainerStatus, readiness: str | None = None) -> ConditionUpdate:
    ready = ConditionType.READY
    name = container.name or "the workspace container"
    state, health = container.state or "", container.health or ""
    check = f"readiness check ({readiness})" if readiness else "health check"
    if state == "running":
        if health == "starting":
            return ConditionUpdate(
                ready, "False", Reason.CONTAINER_STARTING, f"{name} is running; {check} pending"
            )
        if health == "unhealthy":
            return ConditionUpdate(ready, "False", Reason.CONTAINER_UNHEALTHY, f"{name} fails its {check}")
        return ConditionUpdate(ready, "True", Reason.CONTAINER_RUNNING, f"{name} is running")
    if state == "restarting":
        return ConditionUpdate(
            ready,
            "False",
            Reason.CONTAINER_RESTARTING,
            f"{name} is being restarted by Docker{_exit_detail(container)}",
        )
    if state in ("exited", "dead"):
        return ConditionUpdate(
            ready, "False", Reason.CONTAINER_EXITED, f"{name} {state}{_exit_detail(container)}"
        )
    return ConditionUpdate(
        ready, "False", Reason.CONTAINER_NOT_RUNNING, f"{name} is {state or 'in an unknown state'}"
    )


def _exit_detail(container: ContainerStatus) -> str:
    detail = ""
    if container.exit_code is not None:
        detail += f" (last exit code {container.exit_code})"
    if container.oom_killed:
        detail += "; it was killed for exceeding its memory limit (a higher spec.tier allows more)"
    return detail


def _synced(outcome: ReconcileOutcome) -> ConditionUpdate:
    synced = ConditionType.SYNCED
    if outcome.stalled is not None:
        return ConditionUpdate(synced, "False", Reason.RECONCILE_ERROR, outcome.stalled.message)
    if outcome.error is not None:
        return ConditionUpdate(synced, "False", *_cause(outcome.error))
    if outcome.suspended and not outcome.deleting:
        # The desired state (nothing running) was applied: not an error, so not Synced=False, which
        # dashboards and Argo CD treat as degraded.
        why = outcome.paused.message if outcome.paused is not None else "spec.suspend is true"
        return ConditionUpdate(synced, "True", Reason.RECONCILE_PAUSED, why)
    return ConditionUpdate(synced, "True", Reason.RECONCILE_SUCCESS, "the last reconcile applied the spec")


def _reconciling(outcome: ReconcileOutcome, first_visit: bool, ready: ConditionUpdate) -> Cause | None:
    if outcome.progressing is not None:
        return outcome.progressing
    if outcome.deleting:
        return Cause(Reason.DELETING, "removing the workspace's Docker objects")
    if first_visit and ready.status != "True" and not outcome.suspended and outcome.error is None:
        return Cause(Reason.PROGRESSING, "the workspace is being provisioned")
    return None


def compute_phase(outcome: ReconcileOutcome) -> Phase:
    """A one-word summary for ``kubectl get -o wide``; conditions remain the contract."""
    if outcome.deleting:
        return "Terminating"
    if outcome.stalled is not None:
        # Waiting for room is not a failure of the Workspace: like an unschedulable Pod, it is Pending.
        return "Pending" if outcome.stalled.reason == Reason.UNSCHEDULABLE else "Failed"
    if outcome.suspended:
        paused = outcome.paused.reason if outcome.paused is not None else None
        if paused == Reason.EXPIRED:
            return "Expired"
        return "Hibernated" if paused == Reason.HIBERNATED else "Suspended"
    container = outcome.container
    if container is None:
        if outcome.progressing is not None and outcome.progressing.reason in (
            Reason.CREATING,
            Reason.PULLING,
        ):
            return "Creating"
        return "Pending"
    state, health = container.state or "", container.health or ""
    if state == "running":
        if health == "starting":
            return "Starting"
        return "Unhealthy" if health == "unhealthy" else "Running"
    if state == "restarting":
        return "Restarting"
    if state in ("exited", "dead"):
        return "Exited"
    if state == "created":
        return "Creating"
    return "Pending"
