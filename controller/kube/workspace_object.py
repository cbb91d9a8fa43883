"""A Workspace object as the API server sends it, read into the parts a reconcile needs, and whether a
watch event about it asks for one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.core.identity import WorkspaceRef

FLUX_REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
"""Flux's "reconcile now" annotation; its value is echoed in status.lastHandledReconcileAt once handled."""


@dataclass(frozen=True)
class WorkspaceObject:
    """The parts of a Workspace object a reconcile reads."""

    ref: WorkspaceRef
    generation: int
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    annotations: Mapping[str, str]
    deleting: bool = False

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> WorkspaceObject:
        meta = body.get("metadata") or {}
        spec = body.get("spec") or {}
        platform_id = spec.get("workspaceID")
        return cls(
            ref=WorkspaceRef(
                uid=str(meta.get("uid", "")),
                namespace=str(meta.get("namespace", "")),
                name=str(meta.get("name", "")),
                platform_id=platform_id if isinstance(platform_id, str) else "",
            ),
            generation=int(meta.get("generation") or 0),
            spec=dict(spec),
            status=dict(body.get("status") or {}),
            annotations=dict(meta.get("annotations") or {}),
            deleting=bool(meta.get("deletionTimestamp")),
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
