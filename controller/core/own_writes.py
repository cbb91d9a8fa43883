"""Telling this controller's own status writes from someone else's, as the watch brings them back.

A pass that writes its status remembers what it wrote. The watch later brings every version of the
Workspace, and a version whose status is none this controller wrote means someone else wrote it: the
next pass writes the truth again. The watch is behind: a pass may write twice in a moment (work in
progress, then the outcome), and the event of the first write comes after the second was made. So the
statuses written in the last `ECHO_SECONDS` count as the controller's own too, not only the latest;
and a pass that reads such an earlier one (woken before the watch caught up) builds on the latest.
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
    """The status this controller left stored for one Workspace, the ones it wrote shortly before, and
    the one its first write went over (`base`)."""

    latest: Mapping[str, Any]
    earlier: tuple[tuple[float, Mapping[str, Any]], ...] = ()
    """(when it was written over, the status), newest first."""
    base: tuple[float, Mapping[str, Any]] | None = None

    @classmethod
    def first(cls, read: Mapping[str, Any], status: Mapping[str, Any], now: float) -> OwnWrites:
        """`status` was written at monotonic time `now` over `read`, a status this controller did not
        write (or does not remember writing)."""
        return cls(status, base=(now, read))

    def wrote(self, read: Mapping[str, Any], status: Mapping[str, Any], now: float) -> OwnWrites:
        """`status` was written at `now` over `read`, the status the pass built on."""
        if status_changed(self.latest, read):
            return OwnWrites.first(read, status, now)  # over someone else's
        recent = ((now, self.latest), *self.earlier)
        kept = tuple((at, earlier) for at, earlier in recent if now - at < ECHO_SECONDS)
        base = self.base if self.base is not None and now - self.base[0] < ECHO_SECONDS else None
        return OwnWrites(status, kept[:KEPT], base)

    def behind(self, status: Mapping[str, Any], now: float) -> bool:
        """Whether `status`, read from a Workspace, is one this controller has written over lately: the
        Workspace was read before the watch brought its latest write (a pass woken while the one before
        it wrote), and the latest write is the status to build on."""
        if not status_changed(self.latest, status):
            return False
        over = (*self.earlier, self.base) if self.base is not None else self.earlier
        return any(now - at < ECHO_SECONDS and not status_changed(old, status) for at, old in over)

    def foreign(self, status: Mapping[str, Any], now: float) -> bool:
        """Whether `status`, brought by the watch at `now`, is none this controller wrote lately. (The
        status its first write went over was in the watch before that write: it cannot come again.)"""
        if not status_changed(self.latest, status):
            return False
        return all(now - at >= ECHO_SECONDS or status_changed(old, status) for at, old in self.earlier)
