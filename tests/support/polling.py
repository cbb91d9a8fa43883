"""Polling with a deadline: the only way tests here wait for something to happen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class DeadlineExceeded(AssertionError):
    """Raised when a condition did not hold before its deadline; says what was last seen."""


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Call ``probe`` until it returns something truthy, and return that; fail after ``timeout`` s.

    Exceptions raised by the probe count as "not yet" and the last one is reported on failure.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
        except Exception as exc:  # a probe may fail while the thing is still coming up
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise DeadlineExceeded(f"{what} did not hold within {timeout:.1f}s; last seen: {last!r}")
        time.sleep(interval)
