"""A container found in the list, vouched for by the status written when it was last inspected.

A list entry lacks what the status reports of a container's run (start time, restart count, last exit
code, OOM kill). A controller that starts again (or a new leader) has no inspect of its own yet, and
inspecting every container would cost one call each before it could confirm anything: 500 containers,
500 calls. The status it finds was written from an inspect, though. When the list shows the very run
that status describes (the same container, running, with the same health verdict, configuration and
image, for about as long as the recorded start time says), the status's facts are still true and no
inspect is needed.

"About as long" is what the daemon's humanised `Up …` allows (an interval, see `ObservedContainer.
uptime`), widened by `CLOCK_SLACK` for clock skew and the status's whole seconds. A container that
started again while no controller watched (its restart policy, a daemon restart) has run for less
than the status says, which the interval excludes once the difference reaches the wording's grain
(seconds, then minutes, then hours); then, or on any other doubt, the caller inspects.
"""

from __future__ import annotations

import dataclasses

from controller.api.workspace import ContainerStatus
from controller.core import labels
from controller.core.conditions import parse_time
from controller.port.values import ObservedContainer

CLOCK_SLACK = 5.0
"""Seconds of disagreement allowed between the recorded start and the listed uptime."""


def confirmed(
    listed: ObservedContainer, recorded: ContainerStatus | None, listed_at: float
) -> ObservedContainer | None:
    """`listed` with the detail `recorded` holds, when `recorded` speaks of this very run of it (`listed_at`:
    the wall-clock time of the list, epoch seconds); None when only an inspect can tell."""
    if recorded is None or listed.detail or listed.state != "running" or listed.uptime is None:
        return None
    same = (
        recorded.id == listed.id
        and recorded.name == listed.name
        and recorded.state == listed.state
        and recorded.health == listed.health
        and recorded.image == listed.image
        and recorded.config_hash == labels.read_config_hash(listed.labels)
    )
    if not same or recorded.started_at is None or recorded.restart_count is None:
        return None
    started = parse_time(recorded.started_at)
    if started is None:
        return None
    ran = listed_at - started.timestamp()
    low, high = listed.uptime
    if ran + CLOCK_SLACK < low or ran - CLOCK_SLACK >= high:
        return None  # started again since the status was written
    return dataclasses.replace(
        listed,
        detail=True,
        started_at=started,
        finished_at=None,
        restart_count=recorded.restart_count,
        exit_code=recorded.exit_code,
        oom_killed=recorded.oom_killed,
        uptime=None,
    )
