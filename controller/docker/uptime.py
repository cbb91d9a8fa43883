"""How long a listed container has run, read back from the daemon's humanised `Up …` status text.

A container list (`GET /containers/json`) does not carry `State.StartedAt`; its `Status` says
`Up 3 minutes (healthy)`, made by the daemon with go-units' `HumanDuration`. Each wording covers an
interval of durations; `uptime_interval` gives that interval, so that a caller holding the start time it
recorded earlier can tell whether the container may still be in the run it recorded (the interval
contains the time since then) or has started again since (it cannot).

HumanDuration, for a duration d (seconds s = int(d), minutes m = int(d / 60), rounded hours
h = int(d / 3600 + 0.5)): s < 1 "Less than a second"; s == 1 "1 second"; s < 60 "s seconds"; m == 1
"About a minute"; m < 60 "m minutes"; h == 1 "About an hour"; h < 48 "h hours"; h < 336 "h/24 days";
h < 1440 "h/168 weeks"; h < 17520 "h/720 months"; else "int(d / 3600)/8760 years".
"""

from __future__ import annotations

import re

_MINUTE = 60.0
_HOUR = 3600.0

_UP = re.compile(r"^up\s+(.+?)(?:\s+\(.*\))?\s*$", re.IGNORECASE)
_COUNT = re.compile(r"^(\d+)\s+(second|minute|hour|day|week|month|year)s?$", re.IGNORECASE)


def _rounded_hours(first: int, last: int) -> tuple[float, float]:
    """The durations whose rounded hours lie in [first, last)."""
    return ((first - 0.5) * _HOUR, (last - 0.5) * _HOUR)


def _interval(wording: str) -> tuple[float, float] | None:
    text = wording.strip().lower()
    if text == "less than a second":
        return (0.0, 1.0)
    if text == "about a minute":
        return (_MINUTE, 2 * _MINUTE)
    if text == "about an hour":
        return (_HOUR, 1.5 * _HOUR)  # reached only from 60 minutes on
    match = _COUNT.match(text)
    if match is None:
        return None
    n, unit = int(match.group(1)), match.group(2)
    if unit == "second":
        return (float(n), n + 1.0)
    if unit == "minute":
        return (n * _MINUTE, (n + 1) * _MINUTE)
    if unit == "hour":
        return _rounded_hours(n, n + 1)
    if unit == "day":
        return _rounded_hours(24 * n, 24 * (n + 1))
    if unit == "week":
        return _rounded_hours(168 * n, 168 * (n + 1))
    if unit == "month":
        return _rounded_hours(720 * n, 720 * (n + 1))
    return (n * 8760 * _HOUR, (n + 1) * 8760 * _HOUR)


def uptime_interval(status_text: str) -> tuple[float, float] | None:
    """The seconds a container listed as `status_text` may have been running, as [low, high); None
    unless the text is a running container's `Up …` in a wording this knows."""
    match = _UP.match(status_text.strip())
    return _interval(match.group(1)) if match else None
