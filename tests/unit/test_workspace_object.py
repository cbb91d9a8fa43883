"""A Workspace object as the API server sends it, read into what a reconcile needs."""

from __future__ import annotations

from typing import Any

from controller.core.identity import WorkspaceRef
from controller.kube.workspace_object import (
    FLUX_REQUESTED_AT,
    LAST_APPLIED,
    WorkspaceObject,
    kept,
    needs_attention,
)


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
    assert obj.ref == WorkspaceRef(uid="u-1", namespace="ns", name="w")
    assert obj.generation == 4
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


# --- needs_attention: which watch events ask for a reconcile -------------------------------------------


def _body(generation: int, status: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"uid": "u", "namespace": "ns", "name": "w", "generation": generation, **metadata},
        "spec": {},
    }
    if status is not None:
        body["status"] = status
    return body


def test_a_deletion_always_needs_attention() -> None:
    handled = {"observedGeneration": 2, "lastHandledReconcileAt": "t1"}
    body = _body(2, handled, deletionTimestamp="2026-01-01T00:00:00Z", annotations={FLUX_REQUESTED_AT: "t1"})
    assert needs_attention(body)


def test_a_generation_newer_than_the_observed_one_needs_attention() -> None:
    assert needs_attention(_body(3, {"observedGeneration": 2}))
    assert needs_attention(_body(1))  # never reconciled: no status at all


def test_our_own_status_write_does_not_need_attention() -> None:
    status = {
        "observedGeneration": 3,
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    assert not needs_attention(_body(3, status))


def test_a_flux_reconcile_request_needs_attention_until_the_status_echoes_it() -> None:
    requested = {FLUX_REQUESTED_AT: "2026-02-03T04:05:06Z"}
    assert needs_attention(_body(3, {"observedGeneration": 3}, annotations=requested))
    handled = {"observedGeneration": 3, "lastHandledReconcileAt": "2026-02-03T04:05:06Z"}
    assert not needs_attention(_body(3, handled, annotations=requested))
    newer = {FLUX_REQUESTED_AT: "2026-02-03T05:00:00Z"}
    assert needs_attention(_body(3, handled, annotations=newer))


def test_what_is_kept_of_a_workspace_leaves_out_the_servers_and_kubectls_bookkeeping() -> None:
    body = {
        "apiVersion": "molecule.ai/v1alpha1",
        "kind": "Workspace",
        "metadata": {
            "name": "alice",
            "uid": "u-1",
            "resourceVersion": "7",
            "finalizers": ["molecule.ai/workspace"],
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
            "annotations": {LAST_APPLIED: '{"spec": {}}', FLUX_REQUESTED_AT: "now"},
        },
        "spec": {"runtime": "langgraph"},
        "status": {"phase": "Running"},
    }
    slim = kept(body)
    assert "managedFields" not in slim["metadata"]
    assert slim["metadata"]["annotations"] == {FLUX_REQUESTED_AT: "now"}
    assert {k: v for k, v in slim["metadata"].items() if k != "annotations"} == {
        "name": "alice", "uid": "u-1", "resourceVersion": "7", "finalizers": ["molecule.ai/workspace"]
    }  # fmt: skip
    assert (slim["spec"], slim["status"], slim["kind"]) == (body["spec"], body["status"], "Workspace")
    assert "managedFields" in body["metadata"]  # the watch's own copy is not changed
    assert kept({"metadata": {"name": "bob"}}) == {"metadata": {"name": "bob"}}
