"""spec.readiness through the real stack: the HTTP check the agent defines is the container's Docker
health check (replacing the image's), and Ready follows the agent's answer both ways."""

from __future__ import annotations

import pytest

from tests.support.kubectl import KubectlError
from tests.support.polling import wait_until
from tests.support.workspaces import WorkspaceHarness, condition, workspace_manifest

pytestmark = pytest.mark.e2e

# The test agent serves :8000 only; a second busybox httpd on :8001, started and stopped by exec, is the
# agent "answering" or not.
CHECK = {"httpGet": {"path": "/health", "port": 8001}, "periodSeconds": 1, "failureThreshold": 1}


def test_ready_means_the_agent_answers_its_readiness_check(ws: WorkspaceHarness) -> None:
    ws.start_controller()
    ws.apply(workspace_manifest("probed", {"readiness": CHECK}))

    def not_ready_for_the_check() -> bool:
        ready = condition(ws.get("probed"), "Ready") or {}
        return ready.get("status") == "False" and "8001/health" in ready.get("message", "")

    wait_until(not_ready_for_the_check, timeout=60, what="Ready=False naming the readiness check")
    ready = condition(ws.get("probed"), "Ready") or {}
    assert ready["reason"] in ("ContainerStarting", "ContainerUnhealthy")
    assert "readiness check (GET http://127.0.0.1:8001/health)" in ready["message"]
    container = ws.container("probed")
    assert container.status == "running"
    test = container.attrs["Config"]["Healthcheck"]["Test"]
    assert "http://127.0.0.1:8001/health" in test  # the image's own check (:8000) is replaced
    assert container.attrs["Config"]["Healthcheck"]["Interval"] == 1_000_000_000

    container.exec_run(["httpd", "-p", "8001", "-h", "/www"])
    obj = ws.wait_ready("probed", timeout=60)
    assert obj["status"]["container"]["health"] == "healthy"

    stop = "kill $(ps | awk '/httpd -p 8001/ && !/awk/ {print $1}')"
    assert container.exec_run(["sh", "-c", stop]).exit_code == 0
    wait_until(
        lambda: (condition(ws.get("probed"), "Ready") or {}).get("reason") == "ContainerUnhealthy",
        timeout=60,
        what="Ready=False/ContainerUnhealthy once the agent stops answering",
    )
    assert "fails its readiness check" in (condition(ws.get("probed"), "Ready") or {})["message"]
    assert ws.container("probed").id == container.id  # not ready is not a reason to recreate


def test_an_invalid_readiness_check_is_refused_at_apply(ws: WorkspaceHarness) -> None:
    manifest = workspace_manifest("bad-probe", {"readiness": {"httpGet": {"path": "/$(id) x"}}})
    with pytest.raises(KubectlError, match=r"spec.readiness.httpGet.path"):
        ws.apply(manifest)
