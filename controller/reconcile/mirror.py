"""What the watches said while this replica stood by: the latest body of every watched object.

A replica that is not the leader builds nothing and writes nothing, but its watches run: kopf delivers
each object once when it starts watching and every change after. The mirror keeps the latest body of
each, so that the replica that becomes the leader hands every object to the controller at once, as a
fresh start would, without listing everything again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class WatchMirror:
    def __init__(self) -> None:
        self._bodies: dict[tuple[str, str], Mapping[str, Any]] = {}

    def __len__(self) -> int:
        return len(self._bodies)

    def record(self, kind: str, event_type: str | None, body: Mapping[str, Any]) -> None:
        metadata = body.get("metadata") or {}
        key = (kind, str(metadata.get("uid") or metadata.get("name") or ""))
        if event_type == "DELETED":
            self._bodies.pop(key, None)
        else:
            self._bodies[key] = body

    def forget(self, kind: str, body: Mapping[str, Any]) -> None:
        self.record(kind, "DELETED", body)

    def snapshot(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """Every (kind, latest body), a copy: delivering them may change the mirror."""
        for (kind, _), body in list(self._bodies.items()):
            yield kind, body
