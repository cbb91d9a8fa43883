"""Expiry and idle hibernation against the real kube-apiserver and Docker: a Workspace past its
shutdownAfter is stopped with its volumes kept (Suspend) or deleted (Delete); an agent without traffic
for idleAfter is stopped, shows Hibernated, and `kubectl workspace wake` starts the same container with
its data intact, while one with traffic keeps running."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.e2e.test_kubectl_plugin import plugin
from tests.support.polling import wait_until
from tests.support.stack import ControlPlane
from tests.support.workspaces import (
    WorkspaceHarness,
    condition,
    exec_sh,
    volumes_of,
    workspace_manifest,
)

pytestmark = pytest.mark.e2e


def ready_reason(obj: dict[str, Any]) -> str | None:
    found = condition(obj, "Ready")
    return found["reason"] if found else None


def test_an_expired_workspace_is_stopped_with_its_volumes_kept_or_deleted_as_asked(
    ws: WorkspaceHarness,
) -> None:
    ws.start_controller()
    ws.apply(workspace_manifest("brief", {"shutdownAfter": "25s"}))
    ws.apply(workspace_manifest("gone", {"shutdownAfter": "25s", "shutdownPolicy": "Delete"}))
    ws.wait_ready("brief")
    ws.wait_ready("gone")
    brief_uid, gone_uid = ws.uid("brief"), ws.uid("gone")
    running = ws.container("brief")
    assert volumes_of(ws.docker, brief_uid)

    expired = ws.wait_for("brief", lambda o: ready_reason(o) == "Expired", "Expired", timeout=90)
    assert expired["status"]["phase"] == "Expired"
    message = (condition(expired, "Ready") or {})["message"]
    assert "spec.shutdownAfter 25s after its creation" in message
    running.reload()
    assert running.status == "exited"  # stopped, not removed
    assert volumes_of(ws.docker, brief_uid)
    assert "Expired" in ws.event_reasons("brief")

    def deleted() -> bool:
        return "gone" not in ws.kubectl.run("get", "workspaces", "-o", "name")

    wait_until(deleted, timeout=90, what="the Workspace with shutdownPolicy Delete deleted")
    wait_until(lambda: not volumes_of(ws.docker, gone_uid), timeout=60, what="its volumes removed")

    # Moved later, it runs again on the same container.
    ws.patch_spec("brief", {"shutdownAfter": "24h"})
    ws.wait_ready("brief")
    assert ws.container("brief").id == running.id


@contextmanager
def traffic(endpoint: str) -> Iterator[None]:
    """Requests to the agent, about twenty a second, until the block ends."""
    stop = threading.Event()

    def send() -> None:
        while not stop.is_set():
            try:
                with urllib.request.urlopen(f"{endpoint}/health", timeout=2) as response:
                    response.read()
            except OSError:
                pass
            stop.wait(0.05)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        yield
    finally:
        stop.set()
        sender.join(timeout=5)


def test_an_idle_agent_hibernates_and_wakes_with_its_data_while_a_busy_one_keeps_running(
    ws: WorkspaceHarness, control_plane: ControlPlane
) -> None:
    ws.start_controller()
    ws.apply(workspace_manifest("sleepy", {"hibernation": {"idleAfter": "15s"}}))
    ready = ws.wait_ready("sleepy")
    container = ws.container("sleepy")
    exec_sh(container, "echo kept > /workspace/notes.txt")

    # Busy for longer than idleAfter: it keeps running (every phase seen meanwhile is Running).
    phases: set[str] = set()
    with traffic(ready["status"]["endpoint"]):
        busy_until = time.monotonic() + 25

        def busy_window_over() -> bool:
            phases.add(ws.get("sleepy")["status"]["phase"])
            return time.monotonic() >= busy_until

        wait_until(busy_window_over, timeout=60, interval=1.0, what="25 s of traffic")
    assert phases == {"Running"}
    container.reload()
    assert container.status == "running"

    asleep = ws.wait_for("sleepy", lambda o: ready_reason(o) == "Hibernated", "Hibernated", timeout=60)
    assert asleep["status"]["phase"] == "Hibernated"
    assert asleep["status"]["hibernation"]["hibernatedAt"]
    assert "endpoint" not in asleep["status"]
    container.reload()
    assert container.status == "exited"
    assert volumes_of(ws.docker, ws.uid("sleepy"))
    status = plugin(control_plane, ws, "status", "sleepy")
    assert "kubectl workspace wake sleepy" in status.stdout

    woken = plugin(control_plane, ws, "wake", "sleepy")
    assert woken.returncode == 0, woken.stderr
    ready = ws.wait_ready("sleepy")
    assert ws.container("sleepy").id == container.id
    assert exec_sh(ws.container("sleepy"), "cat /workspace/notes.txt") == "kept\n"
    assert ready["status"]["hibernation"]["lastWakeHandled"]
    assert "Woken" in ws.event_reasons("sleepy")
