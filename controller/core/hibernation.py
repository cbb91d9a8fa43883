"""Idle hibernation: when a Workspace has had no traffic for spec.hibernation.idleAfter, and what its
status says about it: pure.

Traffic is what the container receives on its network interfaces, as Docker's counters give it (the
loopback interface is not counted, so a health check inside the container is not traffic). The counter
is sampled every few seconds to a minute; a sample that grew by less than IDLE_NOISE_BYTES (ARP and
other chatter of a shared bridge) counts as quiet. The clock starts at the first sample after the
controller starts or the agent is woken: a restart of the controller never hibernates anyone early.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from controller.api.workspace import HibernationStatus, WorkspaceSpec
from controller.core.causes import Cause, Reason
from controller.core.conditions import format_time
from controller.core.expiry import duration_seconds

IDLE_NOISE_BYTES = 2048
SHORTEST_IDLE = 10
"""Seconds: an idleAfter below this counts as this (an agent is never stopped the moment it starts)."""
SHORTEST_SAMPLE = 2.0
LONGEST_SAMPLE = 60.0


@dataclass(frozen=True)
class Activity:
    """The last sample of a running container's received bytes, and when traffic was last seen."""

    received: int | None
    active_at: float
    """Seconds since the epoch: the last sample that showed traffic (or the first sample)."""


def sampled(previous: Activity | None, received: int | None, now: float) -> Activity:
    """The activity after a new sample of the received-bytes counter."""
    if previous is None or previous.received is None or received is None or received < previous.received:
        # The first sample, or a counter that went back (a new container): the clock starts now.
        return Activity(received, now)
    if received - previous.received >= IDLE_NOISE_BYTES:
        return Activity(received, now)
    return Activity(received, previous.active_at)


def sample_every(spec: WorkspaceSpec) -> float:
    """Seconds between samples: a sixth of idleAfter, within SHORTEST_SAMPLE and LONGEST_SAMPLE."""
    assert spec.hibernation is not None
    return min(max(duration_seconds(spec.hibernation.idle_after) / 6, SHORTEST_SAMPLE), LONGEST_SAMPLE)


def sample_due(last: tuple[str, float] | None, container_id: str, now: float, every: float) -> bool:
    """Whether a pass at `now` takes a sample: none taken yet of this container (`last`: the container
    and the time of the last sample), or `every` seconds have gone by (a pass woken by an event in
    between asks Docker nothing)."""
    return last is None or last[0] != container_id or now - last[1] >= every


def idle_long_enough(spec: WorkspaceSpec, activity: Activity, now: float) -> bool:
    assert spec.hibernation is not None
    return now - activity.active_at >= max(duration_seconds(spec.hibernation.idle_after), SHORTEST_IDLE)


def wake_requested(spec: WorkspaceSpec, status: HibernationStatus | None) -> bool:
    """Whether spec.wakeRequestedAt carries a token not handled yet."""
    token = spec.wake_requested_at
    return bool(token) and token != (status.last_wake_handled if status is not None else None)


def hibernated_cause(spec: WorkspaceSpec, since: str) -> Cause:
    idle = spec.hibernation.idle_after if spec.hibernation is not None else "a while"
    return Cause(
        Reason.HIBERNATED,
        f"hibernated at {since} after {idle} without traffic: the container is stopped and its volumes "
        "kept; `kubectl workspace wake` (a new spec.wakeRequestedAt) starts it again",
    )


@dataclass(frozen=True)
class Verdict:
    """What a pass does about hibernation: the status to report, whether the container is to be stopped
    (`hibernated`, with its cause), and whether the idle clock starts afresh (`woken`)."""

    status: HibernationStatus | None
    cause: Cause | None = None
    woken: bool = False


def judge(spec: WorkspaceSpec, previous: HibernationStatus | None, *, idle: bool, now: datetime) -> Verdict:
    """The pass's verdict, from the spec, the status as last reported, and whether the sampling since
    found the agent idle for idleAfter."""
    handled = previous.last_wake_handled if previous is not None else None
    asleep = previous is not None and previous.hibernated_at is not None
    if wake_requested(spec, previous):
        return Verdict(HibernationStatus(last_wake_handled=spec.wake_requested_at), woken=asleep)
    if spec.hibernation is None:
        # Asleep when hibernation was switched off: awake now, as nothing would ever wake it.
        return Verdict(HibernationStatus(last_wake_handled=handled) if handled else None, woken=asleep)
    if previous is not None and previous.hibernated_at is not None:  # asleep
        return Verdict(previous, hibernated_cause(spec, previous.hibernated_at))
    if idle:
        since = format_time(now)
        return Verdict(
            HibernationStatus(hibernated_at=since, last_wake_handled=handled), hibernated_cause(spec, since)
        )
    return Verdict(HibernationStatus(last_wake_handled=handled) if handled else None)
