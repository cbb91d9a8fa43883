"""A controller that dies mid-provision (SIGKILL, no cleanup) and the one that replaces it: the new
controller adopts what exists instead of duplicating it, and finishes the job; one killed once all is
Ready is replaced without a single change.
"""

from __future__ import annotations

import pytest

from tests.support.metrics import ControllerMetrics
from tests.support.polling import wait_until
from tests.support.workspaces import WorkspaceHarness, containers_of, workspace_manifest

pytestmark = pytest.mark.e2e

FINALIZER = "molecule.ai/workspace-cleanup"
NAMES = ("one", "two", "three")


def _all_ready_with_one_container(ws: WorkspaceHarness, uids: dict[str, str]) -> dict[str, str]:
    ids = {}
    for name, uid in uids.items():
        obj = ws.wait_ready(name)
        found = containers_of(ws.docker, uid)
        assert len(found) == 1, f"{name}: {len(found)} containers carry its uid"
        assert obj["status"]["container"]["id"] == found[0].id
        assert found[0].status == "running"
        ids[name] = found[0].id
    return ids


def test_a_controller_killed_once_a_container_exists_is_replaced_without_duplicates(
    ws: WorkspaceHarness,
) -> None:
    """SIGKILL as soon as the first container exists (the others may be anywhere between not started
    and running): the next controller adopts every existing container (same id) and makes all Ready."""
    for name in NAMES:
        ws.apply(workspace_manifest(name))
    uids = {name: ws.uid(name) for name in NAMES}
    first = ws.start_controller()

    def some_container() -> dict[str, str]:
        return {name: c[0].id for name, uid in uids.items() if (c := containers_of(ws.docker, uid))}

    existing = wait_until(some_container, timeout=60, interval=0.02, what="a container exists")
    first.kill()
    assert not first.running
    existing = some_container()  # what the dead controller left behind

    ws.start_controller()
    ids = _all_ready_with_one_container(ws, uids)
    for name, container_id in existing.items():
        assert ids[name] == container_id, f"{name}: the container was replaced, not adopted"


def test_a_controller_killed_right_after_apply_is_replaced_without_duplicates(ws: WorkspaceHarness) -> None:
    """SIGKILL as soon as the controller has taken the Workspaces on (their finalizer is set), before or
    while it creates anything: the next controller ends with exactly one Ready container each."""
    first = ws.start_controller()
    for name in NAMES:
        ws.apply(workspace_manifest(name))
    uids = {name: ws.uid(name) for name in NAMES}
    wait_until(
        lambda: FINALIZER in (ws.get(NAMES[0])["metadata"].get("finalizers") or []),
        timeout=60,
        interval=0.02,
        what="the controller took the Workspace on",
    )
    first.kill()
    assert not first.running

    ws.start_controller()
    _all_ready_with_one_container(ws, uids)


def test_a_controller_killed_after_writing_ready_is_replaced_without_any_change(ws: WorkspaceHarness) -> None:
    """SIGKILL once the status says Ready (the last write of provisioning): the next controller takes a
    look, finds everything as the status says, and changes nothing: same container, never restarted, no
    condition transition, no write to the Workspace (its resourceVersion stays)."""
    first = ws.start_controller()
    for name in NAMES:
        ws.apply(workspace_manifest(name))
    before = {name: ws.wait_ready(name) for name in NAMES}
    started = {name: containers_of(ws.docker, obj["metadata"]["uid"])[0].attrs["State"]["StartedAt"]
               for name, obj in before.items()}  # fmt: skip
    first.kill()

    metrics = ControllerMetrics.of(ws.start_controller())
    wait_until(
        lambda: (
            metrics.value("controller_runtime_reconcile_total", controller="workspace", result="success")
            >= len(NAMES)
        ),
        timeout=60,
        what="the new controller looked at every Workspace",
    )
    for name, obj in before.items():
        (container,) = containers_of(ws.docker, obj["metadata"]["uid"])
        assert container.id == obj["status"]["container"]["id"]
        assert container.attrs["State"]["StartedAt"] == started[name], f"{name} was restarted"
        now = ws.get(name)
        assert now["status"] == obj["status"], f"{name}: the status changed"
        assert now["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"], "a write happened"
