"""spec.updateStrategy StartFirst: the replacement starts beside the running container and takes over
only once it is Ready; the old one keeps serving until then, and for good if the new one fails.

The containers of a rollout are known by their names, so a restarted controller finds it where it was:

- ``ws-<id12>``: the serving container (its name is the agent's DNS name on the workspace network);
- ``ws-<id12>-next``: the replacement being started, published on a loopback port of its own and
  reachable on the network only by that name, so no client of ``ws-<id12>`` reaches it before it is
  Ready;
- ``ws-<id12>-old``: the previous container after the switch, still serving its open connections and
  the clients that have not yet read the new status.endpoint, removed DRAIN_SECONDS later.

The switch renames the old container away and the new one to ``ws-<id12>``; from that moment the
name resolves to the new container (and, until the old one goes, also to the old one through its
network alias: both are Ready).

Pure decisions here; `decide` consults `roll` before its own rules, and the reconciler carries them out.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.core import labels
from controller.core.causes import Cause, Reason
from controller.port.values import ObservedContainer

NEXT_SUFFIX = "-next"
RETIRED_SUFFIX = "-old"
DRAIN_SECONDS = 5.0
"""How long the previous container keeps serving after the status names the new one."""
RETIRED_STOP_GRACE = 5.0
RETRY_FAILED_AFTER = 300.0
"""Seconds before a configuration whose rollout failed is tried again (a change of it, at once)."""


def next_name(name: str) -> str:
    return name + NEXT_SUFFIX


def retired_name(name: str) -> str:
    return name + RETIRED_SUFFIX


@dataclass(frozen=True)
class StartNext:
    """Create and start the replacement under `ws-<id12>-next`, beside the running container."""

    pull: bool = False
    """Pull the tag whatever the pull policy says (a new image of it is the reason)."""


@dataclass(frozen=True)
class AwaitNext:
    """The replacement runs and is not Ready yet: wait (the old one serves)."""

    next_id: str
    next_name: str


@dataclass(frozen=True)
class Promote:
    """The replacement is Ready: it takes the name; the old one (if any) steps aside to drain."""

    old_id: str | None
    next_id: str


@dataclass(frozen=True)
class Abandon:
    """Remove the replacement: it failed (`cause`), or it is of a configuration no longer wanted."""

    next_id: str
    cause: Cause | None


@dataclass(frozen=True)
class Retire:
    """Stop and remove the previous container, its drain time over."""

    container_id: str


@dataclass(frozen=True)
class HoldFailed:
    """This configuration's rollout failed a moment ago: the old container keeps serving, and nothing is
    tried before the retry time (reported as Synced=False)."""

    cause: Cause


RolloutAction = StartNext | AwaitNext | Promote | Abandon | Retire | HoldFailed


@dataclass(frozen=True)
class FailedRollout:
    config_hash: str
    retry_at: float
    """Monotonic seconds."""
    cause: Cause


@dataclass(frozen=True)
class RolloutView:
    """What a StartFirst decision reads."""

    serving: ObservedContainer | None
    """Ours, under the Workspace's name."""
    next: ObservedContainer | None
    """Ours, under `-next`."""
    retired: ObservedContainer | None
    """Ours, under `-old`."""
    retired_for: float
    """Seconds since the switch that retired it (0 when not known: counted from now)."""
    deadline_passed: bool
    """The rollout of the plan's configuration has been going on longer than progressDeadlineSeconds."""
    failed: FailedRollout | None


def ready(container: ObservedContainer) -> bool:
    """Running, and healthy when it has a health check: the Ready condition's own rule."""
    return container.state == "running" and container.health in (None, "healthy")


def rolls(container: ObservedContainer | None, why: str | None, *, new_image: bool) -> bool:
    """Whether a replacement is done start-first: the running container reflects an older
    configuration (or image); a dead, missing or session-resetting one is replaced as under Recreate."""
    if container is None or container.state != "running":
        return False
    return why in ("a changed configuration", "a swapped image") or (why is None and new_image)


def roll(
    view: RolloutView, *, config_hash: str, start_first: bool, wanted: bool, new_image: bool, now: float
) -> RolloutAction | None:
    """The StartFirst step for this pass, or None to decide as usual.

    wanted: a start-first replacement of the serving container is due (`rolls`).
    """
    if view.retired is not None and view.retired_for >= DRAIN_SECONDS:
        return Retire(view.retired.id)
    nxt = view.next
    if nxt is not None:
        current = labels.read_config_hash(nxt.labels) == config_hash
        if not start_first or not current:
            return Abandon(nxt.id, None)
        if ready(nxt):
            return Promote(view.serving.id if view.serving is not None else None, nxt.id)
        if view.deadline_passed or nxt.state in ("exited", "dead"):
            return Abandon(nxt.id, _failure(nxt, config_hash))
        return AwaitNext(nxt.id, nxt.name or "")
    if not (start_first and wanted):
        return None
    failed = view.failed
    if failed is not None and failed.config_hash == config_hash and now < failed.retry_at:
        return HoldFailed(failed.cause)
    return StartNext(pull=new_image)


def _failure(container: ObservedContainer, config_hash: str) -> Cause:
    name = container.name or "the new container"
    code = f" (exit code {container.exit_code})" if container.exit_code is not None else ""
    if container.state in ("exited", "dead", "restarting"):
        verb = {"exited": "exited", "dead": "is dead", "restarting": "keeps exiting"}[container.state]
        detail = f"it {verb}{code}"
    elif container.health == "unhealthy":
        detail = "it fails its health check"
    else:
        detail = "it did not become Ready within spec.progressDeadlineSeconds"
    message = (
        f"the rollout of configuration {config_hash[:12]} failed: {detail}; {name} was removed and the "
        "previous container keeps serving"
    )
    return Cause(Reason.ROLLOUT_FAILED, message)
