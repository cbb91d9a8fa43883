"""The status write: a merge patch that turns the stored status into the new one, and nothing more."""

from __future__ import annotations

from controller.kube.merge_patch import merge_patch
from tests.support.fake_kube import apply_merge_patch


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
    assert apply_merge_patch(old, merge_patch(old, new)) == new


def test_fields_only_the_old_status_had_are_cleared_with_null() -> None:
    patch = merge_patch({"endpoint": "x", "container": {"exitCode": 1}}, {"container": {}})
    assert patch == {"endpoint": None, "container": {"exitCode": None}}
