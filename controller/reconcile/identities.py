"""Which Workspaces claim which workspace ID, as the Workspace watch tells it.

Two Workspaces claiming one ID (or two IDs whose first 12 characters, which make the Docker names, are
the same) would fight over one container. The index names the holder (`core.identity.holder`); the
others are Stalled/IDConflict before anything is placed or created, and are woken when the holder goes.
It sees the Workspaces this controller follows (its shard): Workspaces of other shards that collide are
kept apart by the Docker names themselves (NameConflict) when they share a host.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from controller.core import naming
from controller.core.causes import Cause
from controller.core.identity import Claim, WorkspaceRef, holder, id_conflict
from controller.kube.workspace_object import WorkspaceObject


class IdentityIndex:
    def __init__(self) -> None:
        self._claims: dict[str, Claim] = {}  # uid -> its claim
        self._by_key: dict[str, set[str]] = {}  # the names' part of the ID -> uids claiming it
        self._seen: set[str] = set()  # uids the watch has told of (not only the start-up list)

    def seed(self, bodies: Iterable[Mapping[str, Any]]) -> None:
        """The claims of the start-up list, so that no Workspace passes before an older holder's claim
        is known. A Workspace deleted before the watch began sends no DELETED: `forget_unseen` drops
        what the watch never confirmed."""
        for body in bodies:
            uid = str((body.get("metadata") or {}).get("uid", ""))
            if uid and uid not in self._seen:
                self._update(body, deleted=False)

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> set[str]:
        """Record a watch event; the uids whose verdict may have changed (to be woken)."""
        uid = str((body.get("metadata") or {}).get("uid", ""))
        if not uid:
            return set()
        deleted = event_type == "DELETED"
        if deleted:
            self._seen.discard(uid)
        else:
            self._seen.add(uid)
        return self._update(body, deleted=deleted) - {uid}

    def forget_unseen(self) -> set[str]:
        """Drop the start-up list's claims the watch never confirmed (deleted meanwhile); the uids to wake."""
        touched: set[str] = set()
        for uid in [uid for uid in self._claims if uid not in self._seen]:
            touched |= self._change(self._claims[uid], None)
        return touched

    def _update(self, body: Mapping[str, Any], *, deleted: bool) -> set[str]:
        obj = WorkspaceObject.from_body(body)
        old = self._claims.get(obj.ref.uid)
        new = None
        if not deleted:
            meta = body.get("metadata") or {}
            new = Claim(
                ref=obj.ref,
                created=str(meta.get("creationTimestamp") or ""),
                established=obj.status.get("workspaceID") == obj.ref.workspace_id,
            )
        return self._change(old, new)

    def _change(self, old: Claim | None, new: Claim | None) -> set[str]:
        """Replace a claim; the claimants of every key whose holder changed by it."""
        keys = {_key(claim.ref) for claim in (old, new) if claim is not None}
        before = {key: self._holder(key) for key in keys}
        if old is not None:
            self._claims.pop(old.ref.uid, None)
            uids = self._by_key.get(_key(old.ref), set())
            uids.discard(old.ref.uid)
            if not uids:
                self._by_key.pop(_key(old.ref), None)
        if new is not None:
            self._claims[new.ref.uid] = new
            self._by_key.setdefault(_key(new.ref), set()).add(new.ref.uid)
        touched: set[str] = set()
        for key in keys:
            if self._holder(key) != before[key]:
                touched |= self._rivals(key)
        return touched

    def follows(self, uid: str) -> bool:
        """Whether a Workspace with this uid exists, as far as this controller can tell."""
        return uid in self._claims

    def conflict(self, ref: WorkspaceRef) -> Cause | None:
        key = _key(ref)
        claims = [self._claims[uid] for uid in self._by_key.get(key, ()) if uid in self._claims]
        return id_conflict(ref, claims, key)

    def _holder(self, key: str) -> str | None:
        held = holder(self._claims[uid] for uid in self._by_key.get(key, ()) if uid in self._claims)
        return held.ref.uid if held else None

    def _rivals(self, key: str) -> set[str]:
        return set(self._by_key.get(key, ()))


def _key(ref: WorkspaceRef) -> str:
    return naming.short_id(ref.workspace_id)
