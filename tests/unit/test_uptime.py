"""Reading a listed container's uptime back from the daemon's humanised `Up …` text.

The oracle is go-units' `HumanDuration` written out again here from its documented rules: every
duration must lie in the interval its own wording gives, and a duration on the far side of a wording's
edge must not.
"""

from __future__ import annotations

import pytest

from controller.docker.uptime import uptime_interval

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


def human_duration(d: float) -> str:
    seconds = int(d)
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = int(d / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(d / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(d / 3600) // 24 // 365} years"


def durations() -> list[float]:
    """From a fraction of a second to years: a geometric sweep plus both sides of every wording's edge."""
    found: list[float] = []
    d = 0.3
    while d < 6 * 365 * DAY:
        found.append(d)
        d *= 1.07
    edges = [1, 2, 60, 120, 3600, 5400, 47.5 * HOUR, 13.5 * 24 * HOUR, 59.5 * 24 * HOUR, 2 * 365 * DAY]
    found += [e + delta for e in edges for delta in (-0.01, 0.0, 0.01)]
    return found


@pytest.mark.parametrize("suffix", ["", " (healthy)", " (health: starting)", " (unhealthy)"])
def test_every_duration_lies_in_the_interval_of_its_own_wording(suffix: str) -> None:
    for d in durations():
        interval = uptime_interval(f"Up {human_duration(d)}{suffix}")
        assert interval is not None, human_duration(d)
        low, high = interval
        assert low <= d < high, (d, human_duration(d), interval)


def test_the_interval_ends_where_the_wording_changes() -> None:
    for d in durations():
        low, high = uptime_interval(f"Up {human_duration(d)}") or (0.0, 0.0)
        # Just past either end the daemon would have said something else.
        if low > 0:
            assert human_duration(low - 0.01) != human_duration(d), (d, low)
        assert human_duration(high + 0.01) != human_duration(d), (d, high)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Up Less than a second", (0.0, 1.0)),
        ("Up 7 seconds", (7.0, 8.0)),
        ("Up About a minute (healthy)", (60.0, 120.0)),
        ("Up 59 minutes", (59 * MINUTE, HOUR)),
        ("Up About an hour", (HOUR, 1.5 * HOUR)),
        ("Up 3 hours", (2.5 * HOUR, 3.5 * HOUR)),
        ("Up 2 days", (47.5 * HOUR, 71.5 * HOUR)),
        ("Up 2 weeks", (335.5 * HOUR, 503.5 * HOUR)),
        ("Up 3 months", (2159.5 * HOUR, 2879.5 * HOUR)),
        ("Up 2 years", (2 * 8760 * HOUR, 3 * 8760 * HOUR)),
    ],
)
def test_wordings(text: str, expected: tuple[float, float]) -> None:
    assert uptime_interval(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Exited (0) 3 minutes ago",
        "Created",
        "Restarting (1) 2 seconds ago",
        "Up",
        "Up a while",
        "",
        "Up -3 hours",
    ],
)
def test_anything_but_a_known_up_wording_says_nothing(text: str) -> None:
    assert uptime_interval(text) is None
