"""The Secrets and ConfigMaps that Workspaces reference, kept current by their watch.

A pass reads every referenced object from here, not from the API server: the first reference to an object
GETs it (several passes asking at once share that GET), and from then on the watch keeps it current, a
deletion included. The watch also wakes every Workspace that referenced an object whose content changed,
so creating a missing Secret or rotating a value is acted on at once rather than at the next resync.

Only referenced objects are kept (and only what the input resolver reads of them: data, type, labels,
owners): every other Secret the watch shows goes by, so the memory held grows with what Workspaces use,
not with the cluster. An object no Workspace references any more is dropped. A kept object is read again
after `max_age` seconds, which bounds what a watch gap could leave stale (a watch that restarts re-lists,
but does not say what was deleted while it was down).

Objects are keyed by kind, namespace and name; "absent" is kept as well (None), so a Workspace waiting for
a Secret costs nothing until the watch says it exists.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from controller import metrics

Kind = Literal["secrets", "configmaps"]
SECRETS: Kind = "secrets"
CONFIG_MAPS: Kind = "configmaps"
Key = tuple[Kind, str, str]
"""kind, namespace, name."""

MAX_AGE_SECONDS = 600.0
KEPT_METADATA = ("labels", "ownerReferences", "resourceVersion")


class ObjectReader(Protocol):
    """The API server's GETs (None when the object does not exist)."""

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None: ...


def kept(body: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What is kept of an object: what the input resolver reads, nothing else (no managed fields)."""
    if body is None:
        return None
    metadata = body.get("metadata") or {}
    trimmed: dict[str, Any] = {
        "metadata": {k: metadata[k] for k in KEPT_METADATA if metadata.get(k) is not None},
    }
    for field in ("type", "data", "binaryData"):
        if body.get(field) is not None:
            trimmed[field] = body[field]
    return trimmed


def same_content(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Equal for every purpose of a pass (a resourceVersion bump alone is not a change)."""
    if a is None or b is None:
        return a is b

    def content(obj: Mapping[str, Any]) -> tuple[Any, ...]:
        metadata = obj.get("metadata") or {}
        return (
            obj.get("type"),
            obj.get("data"),
            obj.get("binaryData"),
            metadata.get("labels"),
            metadata.get("ownerReferences"),
        )

    return content(a) == content(b)


@dataclass
class _Entry:
    body: dict[str, Any] | None
    read_at: float


class ReferencedObjects:
    """Secrets and ConfigMaps by reference: read once, then kept by the watch (see the module)."""

    def __init__(
        self,
        reader: ObjectReader,
        *,
        wake: Callable[[str], object],
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._wake = wake
        self._max_age = max_age
        self._clock = clock
        self._entries: dict[Key, _Entry] = {}
        self._changes: dict[Key, int] = {}
        """How many watch events each key has had: a GET that saw none meanwhile may be kept."""
        self._reads: dict[Key, asyncio.Task[dict[str, Any] | None]] = {}
        self._referrers: dict[Key, set[str]] = {}
        self._references: dict[str, frozenset[Key]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as last known (a GET only for the first reference or an entry past its age)."""
        key: Key = (kind, namespace, name)
        entry = self._entries.get(key)
        if entry is not None and self._clock() - entry.read_at < self._max_age:
            metrics.REFERENCED_OBJECT_READS.labels(kind, "cache").inc()
            return entry.body
        metrics.REFERENCED_OBJECT_READS.labels(kind, "api").inc()
        read = self._reads.get(key)
        if read is None:
            read = asyncio.ensure_future(self._read(key, self._changes.get(key, 0)))
            self._reads[key] = read
        return await asyncio.shield(read)

    async def _read(self, key: Key, changes: int) -> dict[str, Any] | None:
        kind, namespace, name = key
        try:
            if kind == SECRETS:
                body = kept(await self._reader.get_secret(namespace, name))
            else:
                body = kept(await self._reader.get_configmap(namespace, name))
        finally:
            self._reads.pop(key, None)
        if self._changes.get(key, 0) != changes:
            # The watch spoke while the GET was out: what it said is at least as new.
            entry = self._entries.get(key)
            return entry.body if entry is not None else body
        self._entries[key] = _Entry(body, self._clock())
        self._counted()
        return body

    def _counted(self) -> None:
        metrics.REFERENCED_OBJECTS.set(len(self._entries))

    def created(self, kind: Kind, namespace: str, body: Mapping[str, Any]) -> None:
        """An object this controller just created: known without waiting for its watch event."""
        name = (body.get("metadata") or {}).get("name")
        if isinstance(name, str):
            key: Key = (kind, namespace, name)
            self._changes[key] = self._changes.get(key, 0) + 1
            self._entries[key] = _Entry(kept(body), self._clock())
            self._counted()

    def referenced(self, uid: str, keys: Collection[Key]) -> None:
        """What a Workspace's last pass referenced: whom to wake when one of them changes."""
        now = frozenset(keys)
        before = self._references.get(uid, frozenset())
        if now == before:
            return
        for key in before - now:
            self._drop_referrer(key, uid)
        for key in now - before:
            self._referrers.setdefault(key, set()).add(uid)
        if now:
            self._references[uid] = now
        else:
            self._references.pop(uid, None)

    def forget(self, uid: str) -> None:
        """A Workspace that is gone references nothing."""
        for key in self._references.pop(uid, frozenset()):
            self._drop_referrer(key, uid)

    def _drop_referrer(self, key: Key, uid: str) -> None:
        referrers = self._referrers.get(key)
        if referrers is None:
            return
        referrers.discard(uid)
        if not referrers:
            del self._referrers[key]
            self._entries.pop(key, None)
            self._changes.pop(key, None)
            self._counted()

    def watch_event(self, kind: Kind, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A watch event of a Secret or ConfigMap: kept, and its referrers woken, only if referenced."""
        metadata = body.get("metadata") or {}
        namespace, name = metadata.get("namespace"), metadata.get("name")
        if not isinstance(namespace, str) or not isinstance(name, str):
            return
        key: Key = (kind, namespace, name)
        if key not in self._entries and key not in self._reads and key not in self._referrers:
            return  # nobody's business
        self._changes[key] = self._changes.get(key, 0) + 1
        new = None if event_type == "DELETED" else kept(body)
        old = self._entries.get(key)
        self._entries[key] = _Entry(new, self._clock())
        self._counted()
        if old is not None and same_content(old.body, new):
            return
        for uid in sorted(self._referrers.get(key, ())):
            self._wake(uid)
