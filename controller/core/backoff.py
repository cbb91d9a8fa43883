"""How long to wait before retrying something that failed: one formula for every retry the controller
makes (a failed reconcile, a failed finalizer)."""

from __future__ import annotations

MAX_BACKOFF = 60.0
"""Seconds; the wait stops doubling there."""


def backoff(retries: int) -> float:
    """Seconds to wait before retry number `retries` + 1: 1, 2, 4, ... 32, then 60 from the sixth retry on."""
    return min(2.0 ** min(max(retries, 0), 6), MAX_BACKOFF)
