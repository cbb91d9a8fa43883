"""The controller's finalizer on a Workspace, as JSON patches: added before any Docker object exists,
removed once the Docker objects are gone.

The controller owns it, rather than kopf: kopf's own finalizer handling keeps a copy of the spec in an
annotation (its diff base), which a large Workspace cannot hold (annotations are limited to 256 KiB
together), and a kopf daemon is not started for an object first seen while it is being deleted, which
would leave its finalizer in place forever after a restart. Each patch tests what it changes, so a
concurrent edit makes it fail (and be retried from the newer object) rather than undo that edit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FINALIZER = "molecule.ai/workspace-cleanup"
KOPF_ANNOTATION_PREFIX = "kopf.zalando.org/"
"""kopf's bookkeeping, written by earlier versions of this controller; removed when seen."""


def finalizers_of(body: Mapping[str, Any]) -> list[str]:
    return [str(f) for f in (body.get("metadata") or {}).get("finalizers") or []]


def has_finalizer(body: Mapping[str, Any]) -> bool:
    return FINALIZER in finalizers_of(body)


def add_finalizer(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The JSON patch that adds the finalizer (and drops kopf's leftovers), valid for this very version."""
    meta = body.get("metadata") or {}
    ops: list[dict[str, Any]] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": meta.get("resourceVersion")}
    ]
    if meta.get("finalizers"):
        ops.append({"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER})
    else:
        ops.append({"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]})
    return ops + drop_kopf_annotations(body)


def remove_finalizer(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The JSON patch that removes the finalizer where it is now (empty when it is not there)."""
    current = finalizers_of(body)
    if FINALIZER not in current:
        return []
    path = f"/metadata/finalizers/{current.index(FINALIZER)}"
    return [{"op": "test", "path": path, "value": FINALIZER}, {"op": "remove", "path": path}]


def drop_kopf_annotations(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    return [
        {"op": "remove", "path": "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")}
        for key in annotations
        if key.startswith(KOPF_ANNOTATION_PREFIX)
    ]
