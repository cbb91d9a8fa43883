"""The status write: a merge patch that turns the stored status into the new one, and nothing more."""

from __future__ import annotations

from typing import Any

from controller.reconciler import WorkspaceObject, _with_nulls


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies `application/merge-patch+json`."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def test_the_patch_turns_the_old_status_into_the_new_one_exactly() -> None:
    old = {
        "phase": "Exited",
        "endpoint": "http://127.0.0.1:4000",
        "container": {"id": "a", "state": "exited", "exitCode": 3, "finishedAt": "2026-01-01T00:00:00Z"},
        "conditions": [{"type": "Ready", "status": "False"}, {"type": "Stalled", "status": "True"}],
    }
    new = {
        "phase": "Running",
        "container": {"id": "b", "state": "running"},
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    assert apply_merge_patch(old, _with_nulls(old, new)) == new


def test_fields_only_the_old_status_had_are_cleared_with_null() -> None:
    patch = _with_nulls({"endpoint": "x", "container": {"exitCode": 1}}, {"container": {}})
    assert patch == {"endpoint": None, "container": {"exitCode": None}}


def test_workspace_object_reads_identity_generation_and_deletion_from_the_body() -> None:
    body = {
        "metadata": {
            "uid": "u-1",
            "namespace": "ns",
            "name": "w",
            "generation": 4,
            "annotations": {"reconcile.fluxcd.io/requestedAt": "t1"},
            "deletionTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"tier": 3},
        "status": {"observedGeneration": 3},
    }
    obj = WorkspaceObject.from_body(body)
    assert (obj.uid, obj.namespace, obj.name, obj.generation) == ("u-1", "ns", "w", 4)
    assert obj.spec == {"tier": 3}
    assert obj.status == {"observedGeneration": 3}
    assert obj.annotations["reconcile.fluxcd.io/requestedAt"] == "t1"
    assert obj.deleting


def test_a_body_without_status_or_annotations_is_a_fresh_object() -> None:
    obj = WorkspaceObject.from_body({"metadata": {"uid": "u", "namespace": "n", "name": "w"}, "spec": {}})
    assert obj.generation == 0
    assert obj.status == {}
    assert obj.annotations == {}
    assert not obj.deleting
