"""Crash-loop detection that does not fight Docker's own restarts.

Docker's `unless-stopped` policy restarts a dying agent with a growing delay (100 ms, doubling, at most
one minute; back to 100 ms once a run lasted ten seconds). The controller only counts those restarts
(from the container's RestartCount) and declares a crash loop when more than a budget happen without
the agent once staying up for a whole window in between. The verdict clears once the agent stays up for
a whole window, or when a new configuration replaces the container.

Between two restarts the agent was down for at most Docker's longest delay and up the rest of the time,
so only a pause of window + that delay without a restart proves it stayed up for a window. Counting the
restarts within a sliding window instead would lose a loop that never ends: once Docker's delay reaches
its cap, a five-minute window holds at most five restarts, and a window shorter than the delay, none.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from controller.core.causes import Cause, Reason

DOCKER_MAX_RESTART_DELAY = 60.0
"""Docker's restart delay stops doubling at one minute (moby's restartmanager)."""
MAX_REMEMBERED = 1000
"""Restart times kept per container; a longer loop is reported as this many restarts."""


@dataclass
class RestartHistory:
    """Restarts seen for one workspace's container, as observation times."""

    container_id: str = ""
    last_count: int = 0
    restarts: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_REMEMBERED))

    def observe(self, container_id: str, restart_count: int, now: float, window: float) -> int:
        """Record what the latest inspect said; return the restarts since the agent last stayed up.

        Those are the restarts of the current episode: none more than window + Docker's longest delay
        after the one before it, and the last one less than that ago.
        """
        if container_id != self.container_id:
            # A new container (recreated for a new configuration, or by hand): a fresh start.
            self.container_id, self.last_count = container_id, restart_count
            self.restarts.clear()
        elif restart_count < self.last_count:
            # Docker resets the count when the container is started by hand (or by the controller).
            self.last_count = restart_count
        elif restart_count > self.last_count:
            self.restarts.extend([now] * (restart_count - self.last_count))
            self.last_count = restart_count
        if self.restarts and self.restarts[-1] <= now - window - DOCKER_MAX_RESTART_DELAY:
            self.restarts.clear()  # it stayed up for a whole window: the episode is over
        return len(self.restarts)

    def episode(self, container_id: str) -> int:
        """The restarts of the current episode of that container (0 for a container not seen yet)."""
        return len(self.restarts) if container_id == self.container_id else 0


def is_crash_looping(restarts: int, budget: int) -> bool:
    return restarts > budget


def crash_loop_cause(
    restarts: int, budget: int, window: float, exit_code: int | None, oom_killed: bool | None
) -> Cause | None:
    """Stalled/CrashLoop when the episode has more restarts than the budget; None otherwise."""
    if not is_crash_looping(restarts, budget):
        return None
    return Cause(Reason.CRASH_LOOP, crash_loop_message(restarts, window, exit_code, oom_killed))


def crash_loop_message(restarts: int, window: float, exit_code: int | None, oom_killed: bool | None) -> str:
    detail = f"; last exit code {exit_code}" if exit_code is not None else ""
    if oom_killed:
        detail += " (killed for exceeding its memory limit)"
    return (
        f"the agent restarted {restarts} times without staying up for {int(window)}s{detail}; Docker keeps "
        "restarting it, the controller does not recreate it until the spec changes or it stays up"
    )
