"""The progress deadline: how long a changed Workspace may take to become Ready, as a pure function.

A rollout starts when a configuration (its config hash) is first seen, on creation and on every change
of the spec or of what it references, and is done the first time that configuration is Ready. One not
done within spec.progressDeadlineSeconds is Stalled/ProgressDeadlineExceeded, saying what it waits for
(the Ready condition's message), as a Deployment reports ProgressDeadlineExceeded. Only a change starts
the clock: a Workspace that was Ready and then crashes is the crash-loop rule's concern.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from controller.api.workspace import RolloutStatus
from controller.core.causes import Cause, Reason
from controller.core.conditions import format_time, parse_time


def next_rollout(
    previous: RolloutStatus | None, config_hash: str | None, ready: bool, now: datetime
) -> RolloutStatus | None:
    """The rollout after a pass that saw `config_hash` (None: no plan this pass) and `ready`."""
    if config_hash is None:
        return previous
    if previous is None or previous.config_hash != config_hash:
        stamp = format_time(now)
        return RolloutStatus(config_hash=config_hash, started_at=stamp, ready_at=stamp if ready else None)
    if ready and previous.ready_at is None:
        return previous.model_copy(update={"ready_at": format_time(now)})
    return previous


def deadline_left(rollout: RolloutStatus | None, deadline_seconds: int, now: datetime) -> float | None:
    """Seconds until an unfinished rollout exceeds its deadline (0 when it has); None when done."""
    if rollout is None or rollout.ready_at is not None:
        return None
    started = parse_time(rollout.started_at)
    if started is None:
        return None
    return max(0.0, (started + timedelta(seconds=deadline_seconds) - now).total_seconds())


def deadline_exceeded(
    rollout: RolloutStatus | None, deadline_seconds: int, now: datetime, waiting_for: str
) -> Cause | None:
    left = deadline_left(rollout, deadline_seconds, now)
    if left is None or left > 0:
        return None
    return Cause(
        Reason.PROGRESS_DEADLINE_EXCEEDED,
        f"not Ready {deadline_seconds}s after the change (spec.progressDeadlineSeconds): {waiting_for}; "
        "still trying",
    )
