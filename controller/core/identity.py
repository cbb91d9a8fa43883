"""Which Workspace something belongs to: the one identity type, used for labels, Events and logs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from controller.core.causes import Cause, Reason


@dataclass(frozen=True)
class WorkspaceRef:
    """A Workspace: its Kubernetes identity (uid, namespace, name) and the platform's ID for it.

    `platform_id` is spec.workspaceID when the platform gave one. `slot` is the warm pool slot the
    Workspace was bound to (`core.pools`), when it was. `workspace_id` is what every Docker name,
    WORKSPACE_ID and the internal URL derive from: the platform's ID, else the slot's, else the uid.
    Ownership of Docker objects goes by `owner_uid` (their uid label): the uid, or the slot's ID for a
    Workspace bound to a slot (the container was made, and labelled, before the Workspace existed). Two
    Workspaces may claim one ID, never one object.
    """

    uid: str
    namespace: str
    name: str
    platform_id: str = ""
    slot: str = ""

    @property
    def workspace_id(self) -> str:
        return self.platform_id or self.slot or self.uid

    @property
    def owner_uid(self) -> str:
        """The uid label of this Workspace's Docker objects."""
        return self.slot or self.uid

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Claim:
    """A Workspace's claim on a workspace ID (the names made from its first 12 characters).

    established: its status already records the ID (it has held it), which outranks age: a holder is
    not displaced by a Workspace that only looks older. created: metadata.creationTimestamp (RFC 3339,
    so ordered as text).
    """

    ref: WorkspaceRef
    created: str
    established: bool = False

    @property
    def rank(self) -> tuple[bool, str, str]:
        return (not self.established, self.created, self.ref.uid)


def holder(claims: Iterable[Claim]) -> Claim | None:
    """Who holds an ID among those claiming it: one that held it already, else the oldest (uid breaks
    ties, so every controller that sees the same claims names the same holder)."""
    return min(claims, key=lambda claim: claim.rank, default=None)


def id_conflict(ref: WorkspaceRef, claims: Iterable[Claim], short: str) -> Cause | None:
    """Stalled/IDConflict when another Workspace holds the ID `ref` claims (`short`: the names' part)."""
    held = holder(claims)
    if held is None or held.ref.uid == ref.uid:
        return None
    same = held.ref.workspace_id == ref.workspace_id
    what = (
        f"workspaceID {ref.workspace_id} is already Workspace {held.ref}'s"
        if same
        else f"workspaceID {ref.workspace_id} gives the names of Workspace {held.ref} "
        f"(workspace ID {held.ref.workspace_id}: both begin {short})"
    )
    return Cause(
        Reason.ID_CONFLICT,
        f"{what}; nothing is created for this one while that Workspace exists (its container and volumes "
        "are not touched)",
    )
