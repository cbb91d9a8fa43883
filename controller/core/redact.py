"""Keeping secret values out of what the controller writes: status messages, Events and logs.

Messages are built from names, never values; but a runtime's own error text may quote what it was
given (an OCI runtime quotes a bad environment entry whole). Every message that carries such text is
passed through `redact` with the values read from Secrets before it is written anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from controller.core.causes import Cause

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 4
"""Shorter values are not searched for: they would blot out ordinary words of the message."""


def _spellings(value: str) -> set[str]:
    """The value as it may appear quoted in someone else's message: raw, and JSON-escaped (ASCII or not),
    which is also how Go's %q spells most of what it escapes."""
    return {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }


def redact(message: str, secrets: Iterable[str]) -> str:
    """`message` with every occurrence of every secret value (in any spelling above) replaced."""
    spellings = {s for value in secrets if len(value) >= MIN_SECRET_LENGTH for s in _spellings(value)}
    for spelling in sorted(spellings, key=len, reverse=True):  # longest first: no half-redacted rest
        message = message.replace(spelling, REDACTED)
    return message


def redact_cause(cause: Cause, secrets: Iterable[str]) -> Cause:
    redacted = redact(cause.message, secrets)
    return cause if redacted == cause.message else Cause(cause.reason, redacted)
