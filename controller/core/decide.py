"""What one reconcile does to a Workspace's container: a pure decision, one action per pass.

``decide(desired, observed, history, now)`` reads the plan (or Suspend), the container the runtime shows
under the Workspace's name (and whether it is ours), and what the controller remembers, and returns one
``Action``. The reconciler executes it and the next pass (a trigger, the resync or a requeue) looks again:
level-based, so a pass that is interrupted, or whose world changed meanwhile, is corrected by the next.

The order of the rules is the contract (the unit tests pin it as a table):

0. StartFirst (`core.start_first.roll`): a replacement under way, or due, is carried on beside the
   serving container; a retired one is removed once drained. Otherwise the rules below.
1. Suspended: stop an active container of ours, else nothing. Its volumes and the container are kept.
   Denied by the namespace's WorkspacePolicies (a grant withdrawn after the container was made): the
   same, reported as Stalled/PolicyDenied; nothing is created while it is denied.
2. A container holding our name that is not ours: Stalled/NameConflict (never touched); but one the Go
   provisioner made (its managed label, no instance label) is taken over when spec.adopt asks: removed
   (its volumes kept) and created again as ours.
3. No container: create one, unless the daemon refused exactly this configuration a moment ago
   (Stalled until `retry_at`, or at once when the configuration changes).
4. A container that does not reflect the plan (dead, another config hash, an image swapped by hand):
   replace it, emptying the session volume first when a session reset is pending. A requested reset
   changes the hash, so a container that carries the plan's hash has had it: that is how a reset is
   known to be done even when the controller restarted before recording it. An active container
   while spec.imageUpdate wants the newer image its tag names in the registry: pull it, then replace.
5. Paused: unpause. Created (an earlier pass stopped before starting it): write /configs and start it.
   A created or exited container whose start failed twice in a row is replaced instead: a daemon that
   died uncleanly can leave containerd's state of that container behind ("task already exists", "file
   exists"), which fails every start of that container and none of a new one; its volumes stay.
6. Crash-looping under Docker's own restarts: Stalled/CrashLoop (Docker keeps restarting it; the
   controller does not fight it).
7. Exited (with restart policy unless-stopped, only a stop by hand does that): start it again.
8. Anything else (running, restarting, removing): nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from controller.core import labels
from controller.core.causes import Cause, Reason
from controller.core.identity import WorkspaceRef
from controller.core.plan import ContainerPlan, needs_session_reset
from controller.core.start_first import (
    Abandon,
    FailedRollout,
    RolloutAction,
    RolloutView,
    roll,
    rolls,
)
from controller.port.values import ObservedContainer

ACTIVE_STATES = ("running", "restarting", "paused")
STOP_GRACE = 10.0
"""Seconds the agent gets to exit after SIGTERM when suspended."""
START_ATTEMPTS = 2
"""Failed starts of one container in a row before it is replaced rather than started again."""
REJECTED_RETRY = 300.0
"""Seconds before a configuration the daemon refused is tried again (a spec change retries at once)."""
PROGRESS_REQUEUE = 2.0
"""While a container is created but not started, or its health check is pending, look again this soon
even if no Docker event arrives."""


@dataclass(frozen=True)
class Suspend:
    """spec.suspend: no container runs; the container and its volumes are kept."""


@dataclass(frozen=True)
class Denied:
    """The spec asks for more than the namespace is granted: nothing may run (the container is kept)."""

    cause: Cause


@dataclass(frozen=True)
class Observation:
    """The container holding the Workspace's name (None: no such container), and whether it is ours."""

    container: ObservedContainer | None
    owned: bool
    next: ObservedContainer | None = None
    """Ours under `<name>-next`: a StartFirst replacement being started (`core.start_first`)."""
    retired: ObservedContainer | None = None
    """Ours under `<name>-old`: the container a StartFirst switch retired, draining."""

    @classmethod
    def of(
        cls,
        container: ObservedContainer | None,
        *,
        instance: str,
        workspace: WorkspaceRef,
        next_: ObservedContainer | None = None,
        retired: ObservedContainer | None = None,
    ) -> Observation:
        return cls(
            container,
            owned=_ours(container, instance, workspace),
            next=next_ if _ours(next_, instance, workspace) else None,
            retired=retired if _ours(retired, instance, workspace) else None,
        )

    @property
    def legacy(self) -> bool:
        """The container was made by the Go provisioner (which a Workspace may adopt)."""
        return self.container is not None and labels.made_by_go_provisioner(self.container.labels)


def _ours(container: ObservedContainer | None, instance: str, workspace: WorkspaceRef) -> bool:
    return container is not None and labels.owns(container.labels, instance, workspace)


@dataclass(frozen=True)
class Rejection:
    """The daemon refused to create this configuration: not tried again before `retry_at` (monotonic)."""

    config_hash: str
    retry_at: float
    cause: Cause


@dataclass(frozen=True)
class History:
    """What the controller remembers of a Workspace, as the decision needs it.

    session_reset_handled: the last session reset token acted on.
    rejected: the last configuration the daemon refused to create.
    crash_loop: the verdict on the observed container's restarts (`crashloop.crash_loop_cause`).
    unstartable: the id of a container whose last START_ATTEMPTS starts all failed.
    image_update: spec.imageUpdate wants the tag's newer image now (`image_refresh.judge`).
    retired_for, rollout_deadline_passed, failed_rollout: a StartFirst rollout (`core.start_first`).
    """

    session_reset_handled: str | None = None
    rejected: Rejection | None = None
    crash_loop: Cause | None = None
    unstartable: str | None = None
    image_update: bool = False
    retired_for: float = 0.0
    """Seconds since a StartFirst switch retired the container under `<name>-old`."""
    rollout_deadline_passed: bool = False
    """The plan's configuration has been rolling out longer than spec.progressDeadlineSeconds."""
    failed_rollout: FailedRollout | None = None


# --- actions ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keep:
    """Nothing to change."""


@dataclass(frozen=True)
class Stall:
    cause: Cause


@dataclass(frozen=True)
class Create:
    reset_session: bool = False
    """Empty the session volume first (a session reset was requested and not handled yet)."""


ReplaceWhy = Literal[
    "a session reset",
    "a dead container",
    "a changed configuration",
    "a swapped image",
    "a container Docker cannot start",
    "a new image of its tag",
]


@dataclass(frozen=True)
class Replace:
    """Remove the container (after the new image is in place) and create it again."""

    container_id: str
    why: ReplaceWhy
    reset_session: bool = False
    pull: bool = False
    """Pull the tag whatever the pull policy says, and replace only once that succeeded."""


@dataclass(frozen=True)
class Adopt:
    """Take over the Go provisioner's container: remove it (not its volumes) and create ours on them."""

    container_id: str
    container_name: str


@dataclass(frozen=True)
class Start:
    container_id: str
    write_files: bool = False
    """Write /configs first: the container was created but an earlier pass did not get to start it."""
    restart: bool = False
    """It ran before and was stopped (reported as Restarted rather than Started)."""


@dataclass(frozen=True)
class Unpause:
    container_id: str


@dataclass(frozen=True)
class Stop:
    container_id: str
    grace: float = STOP_GRACE
    because: Cause | None = None
    """Why it is stopped when that is a problem to report (Stalled), not the spec's wish (suspend)."""


Action = Keep | Stall | Create | Replace | Adopt | Start | Unpause | Stop | RolloutAction


def decide(
    desired: ContainerPlan | Suspend | Denied, observed: Observation, history: History, now: float
) -> Action:
    """The one action for this pass (`now` is monotonic seconds, compared with `history.rejected`)."""
    container = observed.container
    if isinstance(desired, Suspend | Denied):
        because = desired.cause if isinstance(desired, Denied) else None
        if observed.next is not None:
            return Abandon(observed.next.id, None)  # nothing of it may run: the replacement first
        if container is not None and observed.owned and container.state in ACTIVE_STATES:
            return Stop(container.id, because=because)
        return Stall(because) if because is not None else Keep()

    plan = desired
    if container is not None and not observed.owned:
        if observed.legacy and plan.adopt:
            return Adopt(container.id, container.name or plan.name)
        return Stall(name_conflict(plan.name, legacy=observed.legacy))
    reset = needs_session_reset(plan, history.session_reset_handled)
    serving = container if observed.owned else None
    wanted = not reset and rolls(
        serving, replacement(plan, serving) if serving else None, new_image=history.image_update
    )
    view = RolloutView(
        serving,
        observed.next,
        observed.retired,
        history.retired_for,
        history.rollout_deadline_passed,
        history.failed_rollout,
    )
    step = roll(
        view,
        config_hash=plan.config_hash,
        start_first=plan.start_first,
        wanted=wanted,
        new_image=history.image_update,
        now=now,
    )
    if step is not None:
        return step
    if container is None:
        rejected = history.rejected
        if rejected is not None and rejected.config_hash == plan.config_hash and now < rejected.retry_at:
            return Stall(rejected.cause)
        return Create(reset_session=reset)
    why = replacement(plan, container)
    if why is not None:
        return Replace(container.id, "a session reset" if reset else why, reset_session=reset)
    if history.image_update and container.state in ACTIVE_STATES:
        return Replace(container.id, "a new image of its tag", reset_session=reset, pull=True)
    if container.state == "paused":
        return Unpause(container.id)
    if container.id == history.unstartable and container.state in ("created", "exited"):
        return Replace(container.id, "a container Docker cannot start", reset_session=reset)
    if container.state == "created":
        return Start(container.id, write_files=True)
    if history.crash_loop is not None:
        return Stall(history.crash_loop)
    if container.state == "exited":
        return Start(container.id, restart=True)
    return Keep()


def reported_stall(action: Action) -> Cause | None:
    """The Stalled cause an action stands for: a stall, or a stop the namespace's grants forced."""
    if isinstance(action, Stall):
        return action.cause
    if isinstance(action, Stop):
        return action.because
    return None


def replacement(plan: ContainerPlan, container: ObservedContainer) -> ReplaceWhy | None:
    """Why the container cannot stay, or None when it reflects the plan."""
    if container.state == "dead":
        return "a dead container"
    if labels.read_config_hash(container.labels) != plan.config_hash:
        return "a changed configuration"
    if container.image != plan.image:
        # Swapped by hand: the hash label alone could have been copied.
        return "a swapped image"
    return None


def session_reset_handled(
    plan: ContainerPlan | None, history: History, container: ObservedContainer | None, *, reset_now: bool
) -> str | None:
    """The session reset token the Workspace's container reflects after the pass (None: nothing new).

    Handled when this pass emptied the volume, when no reset is pending, or when the container already
    carries the plan's hash (it was created after the reset, whatever the controller remembers).
    """
    if plan is None:
        return None
    if not plan.session_volume:
        return history.session_reset_handled
    current = container is not None and labels.read_config_hash(container.labels) == plan.config_hash
    if reset_now or current or not needs_session_reset(plan, history.session_reset_handled):
        return plan.session_reset_token
    return None


def name_conflict(name: str, *, legacy: bool = False) -> Cause:
    if legacy:
        return Cause(
            Reason.NAME_CONFLICT,
            f"a container named {name} made by the Go provisioner exists; set spec.adopt: true to take "
            "it over with its volumes, or remove it",
        )
    return Cause(
        Reason.NAME_CONFLICT,
        f"a container named {name} exists that this controller does not own; "
        "remove or rename it and the workspace will be created",
    )


def rejection(plan: ContainerPlan, cause: Cause, now: float) -> Rejection:
    """Remember that the daemon refused `plan`'s configuration (`now` monotonic)."""
    return Rejection(plan.config_hash, now + REJECTED_RETRY, cause)


def follow_up(container: ObservedContainer | None) -> float | None:
    """Seconds until the next look at a container in transition, None when a trigger will do."""
    if container is None:
        return None
    if container.state == "created" or (container.state == "running" and container.health == "starting"):
        return PROGRESS_REQUEUE
    return None
