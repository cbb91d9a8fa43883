"""The progress deadline through the real stack: an agent that never passes its health check is
Stalled/ProgressDeadlineExceeded after spec.progressDeadlineSeconds (its container kept, still tried),
and a change that makes it healthy clears the stall."""

from __future__ import annotations

import pytest

from tests.support.workspaces import WorkspaceHarness, condition, workspace_manifest

pytestmark = pytest.mark.e2e


def test_an_agent_never_healthy_is_stalled_past_its_deadline_and_a_fix_clears_it(
    ws: WorkspaceHarness,
) -> None:
    ws.start_controller()
    ws.apply(
        workspace_manifest(
            "stuck",
            {"progressDeadlineSeconds": 10, "env": [{"name": "AGENT_UNHEALTHY", "value": "1"}]},
        )
    )
    stalled = ws.wait_stalled("stuck", "ProgressDeadlineExceeded")
    assert "not Ready 10s after the change (spec.progressDeadlineSeconds)" in stalled["message"]
    assert "health check" in stalled["message"]
    obj = ws.get("stuck")
    assert obj["status"]["phase"] == "Failed"
    assert (condition(obj, "Ready") or {}).get("status") == "False"
    assert "readyAt" not in obj["status"]["rollout"]
    container = ws.container("stuck")  # kept, and still running: the controller goes on trying
    assert container.status == "running"
    assert "ProgressDeadlineExceeded" in ws.event_reasons("stuck")

    ws.patch_spec("stuck", {"env": []})
    fixed = ws.wait_ready("stuck")
    assert condition(fixed, "Stalled") is None
    assert fixed["status"]["rollout"]["readyAt"]
    assert fixed["status"]["rollout"]["configHash"] == fixed["status"]["container"]["configHash"]
