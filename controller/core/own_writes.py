"""Telling this controller's own status writes from someone else's, as the watch brings them back.

A pass that writes its status remembers what it wrote. The watch later brings every version of the
Workspace, and a version whose status is none this controller wrote means someone else wrote it: the
next pass writes the truth again. The watch is behind: a pass may write twice in a moment (work in
progress, then the outcome), and the event of the first write comes after the second was made. So the
statuses written in the last `ECHO_SECONDS` count as the controller's own too, not only the latest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.core.status import status_changed

ECHO_SECONDS = 30.0
"""How long a status this controller wrote, and has written over since, is still taken for its own
when the watch brings it (the watch's lag; a later echo costs one pass that writes nothing)."""
KEPT = 8
"""At most this many earlier writes are kept per Workspace."""


@dataclass(frozen=True)
class OwnWrites:
    """The status this controller left stored for one Workspace, and the ones it wrote shortly before."""

    latest: Mapping[str, Any]
    earlier: tuple[tuple[float, Mapping[str, Any]], ...] = ()

    def wrote(self, status: Mapping[str, Any], now: float) -> OwnWrites:
        """`status` was written over `latest` at monotonic time `now`."""
        recent = ((now, self.latest), *self.earlier)
        kept = tuple((at, earlier) for at, earlier in recent if now - at < ECHO_SECONDS)
        return OwnWrites(status, kept[:KEPT])

    def foreign(self, status: Mapping[str, Any], now: float) -> bool:
        """Whether `status`, brought by the watch at `now`, is none this controller wrote lately."""
        if not status_changed(self.latest, status):
            return False
        return all(
            now - at >= ECHO_SECONDS or status_changed(earlier, status) for at, earlier in self.earlier
        )
