"""A Workspace object as the API server sends it, read into the parts a reconcile needs, and whether a
watch event about it asks for one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.core.conditions import parse_time
from controller.core.identity import WorkspaceRef
from controller.core.pools import bound_slot

FLUX_REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
"""Flux's "reconcile now" annotation; its value is echoed in status.lastHandledReconcileAt once handled."""
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def kept(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the controller keeps of a Workspace between watch events: the body without the API server's
    and kubectl's bookkeeping (`metadata.managedFields`, and the last-applied-configuration annotation,
    a copy of the manifest), which no reconcile reads and which is often half of the object, for every
    Workspace followed."""
    meta = dict(body.get("metadata") or {})
    meta.pop("managedFields", None)
    annotations = meta.get("annotations")
    if isinstance(annotations, Mapping) and LAST_APPLIED in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    slim = {key: value for key, value in body.items() if key != "metadata"}
    slim["metadata"] = meta
    return slim


@dataclass(frozen=True)
class WorkspaceObject:
    """The parts of a Workspace object a reconcile reads."""

    ref: WorkspaceRef
    generation: int
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    annotations: Mapping[str, str]
    deleting: bool = False
    created: datetime | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> WorkspaceObject:
        meta = body.get("metadata") or {}
        spec = body.get("spec") or {}
        given = spec.get("workspaceID")
        platform_id = given if isinstance(given, str) else ""
        uid = str(meta.get("uid", ""))
        status = body.get("status") or {}
        return cls(
            ref=WorkspaceRef(
                uid=uid,
                namespace=str(meta.get("namespace", "")),
                name=str(meta.get("name", "")),
                platform_id=platform_id,
                slot=bound_slot(meta.get("annotations") or {}, status, uid=uid, platform_id=platform_id),
            ),
            generation=int(meta.get("generation") or 0),
            spec=dict(spec),
            status=dict(status),
            annotations=dict(meta.get("annotations") or {}),
            deleting=bool(meta.get("deletionTimestamp")),
            created=parse_time(str(meta["creationTimestamp"])) if meta.get("creationTimestamp") else None,
        )


def needs_attention(body: Mapping[str, Any]) -> bool:
    """Whether a watch event on a Workspace asks for a reconcile (our own status writes do not)."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    if meta.get("deletionTimestamp"):
        return True
    if meta.get("generation") != status.get("observedGeneration"):
        return True
    requested = (meta.get("annotations") or {}).get(FLUX_REQUESTED_AT)
    return bool(requested) and requested != status.get("lastHandledReconcileAt")
