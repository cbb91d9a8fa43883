"""When a Workspace shuts down (spec.shutdownTime, spec.shutdownAfter), and whether it has: pure."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from controller.api.workspace import WorkspaceSpec
from controller.core.causes import Cause, Reason
from controller.core.conditions import format_time, parse_time

_PART = re.compile(r"([0-9]+)([hms])")
_UNIT = {"h": 3600, "m": 60, "s": 1}
LONGEST_WAIT = 3600.0
"""A Workspace due to shut down later than this is looked at again meanwhile (the clock may jump)."""


def duration_seconds(text: str) -> int:
    """ "1h30m" as seconds (the schema's DURATION_PATTERN admits nothing else)."""
    return sum(int(number) * _UNIT[unit] for number, unit in _PART.findall(text))


def shutdown_at(spec: WorkspaceSpec, created: datetime | None) -> datetime | None:
    """The moment the spec says the Workspace shuts down: the earlier of shutdownTime and creation plus
    shutdownAfter; None when it says neither (or shutdownAfter without a known creation time)."""
    moments: list[datetime] = []
    if spec.shutdown_time is not None:
        moment = parse_time(spec.shutdown_time)
        if moment is not None:
            moments.append(moment)
    if spec.shutdown_after is not None and created is not None:
        moments.append(created + timedelta(seconds=duration_seconds(spec.shutdown_after)))
    return min(moments) if moments else None


def expired(spec: WorkspaceSpec, at: datetime) -> Cause:
    """Why the Workspace no longer runs (Ready=False/Expired)."""
    which = (
        f"spec.shutdownAfter {spec.shutdown_after} after its creation"
        if spec.shutdown_time is None
        or (spec.shutdown_after is not None and at != parse_time(spec.shutdown_time))
        else "spec.shutdownTime"
    )
    if spec.shutdown_policy == "Delete":
        return Cause(Reason.EXPIRED, f"shut down at {format_time(at)} ({which}): the Workspace is deleted")
    return Cause(
        Reason.EXPIRED,
        f"shut down at {format_time(at)} ({which}): the container is stopped and its volumes kept; a later "
        "shutdownTime or shutdownAfter starts it again",
    )


def seconds_until(at: datetime, now: datetime) -> float:
    """How long to wait before looking again at a Workspace due at `at` (at most LONGEST_WAIT)."""
    return min(max((at - now).total_seconds(), 0.0) + 0.5, LONGEST_WAIT)
