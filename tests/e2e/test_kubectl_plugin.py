"""`kubectl workspace`, installed with the package, run through the real kubectl against the real stack:
a Workspace's status, logs, exec, URL, restart, suspend and resume, and completion of its name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stack import ControlPlane
from tests.support.workspaces import WorkspaceHarness, is_ready, workspace_manifest

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent  # where the package's scripts are (kubectl-workspace among them)


def plugin(control_plane: ControlPlane, ws: WorkspaceHarness, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    global_flags = ["--kubeconfig", str(control_plane.admin_kubeconfig), "-n", ws.namespace]
    return subprocess.run(
        [control_plane.kubectl, "workspace", *global_flags, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_the_plugin_resolves_a_workspace_to_its_container(
    ws: WorkspaceHarness, control_plane: ControlPlane
) -> None:
    ws.start_controller()
    ws.apply(workspace_manifest("plugged", {}))
    obj = ws.wait_ready("plugged")
    container_id = obj["status"]["container"]["id"]

    status = plugin(control_plane, ws, "status", "plugged")
    assert status.returncode == 0, status.stderr
    assert "phase Running" in status.stdout
    assert container_id[:12] in status.stdout
    assert "Ready       True    ContainerRunning" in status.stdout

    logs = plugin(control_plane, ws, "logs", "plugged", "--tail", "20")
    assert logs.returncode == 0, logs.stderr
    assert "agent: serving on :8000" in logs.stdout

    executed = plugin(control_plane, ws, "exec", "plugged", "--", "cat", "/configs/config.yaml")
    assert executed.returncode == 0, executed.stderr
    assert (
        executed.stdout == ws.container("plugged").exec_run(["cat", "/configs/config.yaml"]).output.decode()
    )
    failing = plugin(control_plane, ws, "exec", "plugged", "--", "sh", "-c", "exit 7")
    assert failing.returncode == 7

    url = plugin(control_plane, ws, "url", "plugged")
    assert url.stdout.strip() == obj["status"]["endpoint"]

    assert plugin(control_plane, ws, "restart", "plugged").returncode == 0
    ws.wait_for(
        "plugged",
        lambda o: is_ready(o) and o["status"]["container"]["id"] != container_id,
        "Ready on a new container",
    )

    assert plugin(control_plane, ws, "suspend", "plugged").returncode == 0
    ws.wait_for("plugged", lambda o: o["status"].get("phase") == "Suspended", "suspended")
    assert plugin(control_plane, ws, "resume", "plugged").returncode == 0
    ws.wait_ready("plugged")

    missing = plugin(control_plane, ws, "status", "nope")
    assert missing.returncode == 1
    assert "nope" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_workspace_names_complete(ws: WorkspaceHarness, control_plane: ControlPlane) -> None:
    ws.apply(workspace_manifest("completed-one", {}))
    env = {**os.environ, "KUBECONFIG": str(control_plane.admin_kubeconfig)}
    result = subprocess.run(
        [str(BIN / "kubectl_complete-workspace"), "-n", ws.namespace, "status", "comp"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.stdout.split() == ["completed-one", ":4"]
    through_kubectl = subprocess.run(
        [control_plane.kubectl, "__complete", "workspace", "re"],
        capture_output=True,
        text=True,
        env={**env, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
        timeout=60,
    )
    assert {"restart", "reset-session", "resume"} <= set(through_kubectl.stdout.split())
