"""Crash-loop detection that does not fight Docker's own restarts.

Docker's `unless-stopped` policy restarts a dying agent with a growing delay. The controller only
counts those restarts (from the container's RestartCount) and declares a crash loop when more than a
budget happen within a window. The verdict clears once the container stays up for a whole window, or
when a new configuration replaces the container.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class RestartHistory:
    """Restarts seen for one workspace's container, as observation times."""

    container_id: str = ""
    last_count: int = 0
    restarts: deque[float] = field(default_factory=deque)

    def observe(self, container_id: str, restart_count: int, now: float, window: float) -> int:
        """Record what the latest inspect said; return the restarts within the window ending now."""
        if container_id != self.container_id:
            # A new container (recreated for a new configuration, or by hand): a fresh start.
            self.container_id, self.last_count = container_id, restart_count
            self.restarts.clear()
        elif restart_count > self.last_count:
            self.restarts.extend([now] * (restart_count - self.last_count))
            self.last_count = restart_count
        while self.restarts and self.restarts[0] <= now - window:
            self.restarts.popleft()
        return len(self.restarts)


def is_crash_looping(restarts_in_window: int, budget: int) -> bool:
    return restarts_in_window > budget


def crash_loop_message(restarts: int, window: float, exit_code: int | None, oom_killed: bool | None) -> str:
    detail = f"; last exit code {exit_code}" if exit_code is not None else ""
    if oom_killed:
        detail += " (killed for exceeding its memory limit)"
    return (
        f"the agent restarted {restarts} times within {int(window)}s{detail}; Docker keeps restarting it, "
        "the controller does not recreate it until the spec changes or it stays up"
    )
