"""The controller killed (SIGKILL, no cleanup) between any two of its Docker steps, while provisioning and
while deleting, and a Docker daemon gone during a deletion: the next controller converges every
Workspace to exactly one container on the same volumes, leaves nothing behind, and releases finalizers.

The controller reaches the real daemon through a relay that holds one chosen request back (it never
reaches the daemon): the test kills the controller while it waits for that request, so everything
before it happened and nothing after it did.

A status write is one PATCH, which the apiserver applies whole or not at all: a kill "during" it is a kill
before it (the after-the-start step holds the inspection that precedes the write: the container runs,
the status still says Creating) or after it (a Ready Workspace under a restarted controller, which
tests/e2e/test_workspace_adoption.py covers).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.polling import wait_until
from tests.support.relay import DaemonRelay
from tests.support.stack import Registry
from tests.support.workspaces import (
    WorkspaceHarness,
    condition,
    containers_of,
    exec_sh,
    stalled_reason,
    volumes_of,
    workspace_manifest,
)

pytestmark = pytest.mark.e2e

V = rb"/v[0-9.]+"
STEPS: dict[str, tuple[bytes, bytes | None]] = {
    "after-the-volumes": (rb"POST " + V + rb"/containers/create", None),
    "after-the-container": (rb"PUT " + V + rb"/containers/[0-9a-f]+/archive", None),
    "after-the-files": (rb"POST " + V + rb"/containers/[0-9a-f]+/start", None),
    "after-the-start": (
        rb"GET " + V + rb"/containers/ws-[^/ ]+/json",
        rb"POST " + V + rb"/containers/[0-9a-f]+/start",
    ),
}
HOLD_TIMEOUT = 60.0
DELETE_TIMEOUT = 90.0


def _docker_state(ws: WorkspaceHarness, uid: str) -> dict[str, Any]:
    containers = containers_of(ws.docker, uid)
    return {
        "containers": sorted((c.name, c.status) for c in containers),
        "volumes": sorted(volumes_of(ws.docker, uid)),
    }


def _gone(ws: WorkspaceHarness, name: str) -> bool:
    return name not in ws.kubectl.run("get", "workspaces", "-o", "name")


def _mark(ws: WorkspaceHarness, registry: Registry, volume: str) -> None:
    """A file written into a volume from outside: it survives only if the volume is kept, not remade."""
    ws.docker.containers.run(
        registry.image("langgraph"),
        entrypoint=["/bin/sh", "-c", "echo kept > /v/marker"],
        volumes={volume: {"bind": "/v", "mode": "rw"}},
        remove=True,
    )


@pytest.mark.parametrize("step", list(STEPS))
def test_killed_during_provisioning_the_next_controller_finishes_with_one_container_on_the_same_volumes(
    ws: WorkspaceHarness, daemon_relay: DaemonRelay, registry: Registry, step: str
) -> None:
    pattern, after = STEPS[step]
    hold = daemon_relay.hold(pattern, after=after)
    ws.apply(workspace_manifest("killed"))
    uid = ws.uid("killed")
    first = ws.start_controller(DOCKER_HOST=daemon_relay.url)
    hold.wait(HOLD_TIMEOUT)
    first.kill()
    hold.released.set()
    left = _docker_state(ws, uid)
    print(f"\n{step}: the killed controller left {left}")
    workspace_volume = f"ws-{uid[:12]}-workspace"
    assert workspace_volume in left["volumes"], "every step here comes after the volumes"
    _mark(ws, registry, workspace_volume)

    ws.start_controller()
    obj = ws.wait_ready("killed")
    found = containers_of(ws.docker, uid)
    assert len(found) == 1, [c.name for c in found]
    assert found[0].status == "running"
    assert obj["status"]["container"]["id"] == found[0].id
    assert _docker_state(ws, uid)["volumes"] == left["volumes"]
    assert exec_sh(found[0], "cat /workspace/marker") == "kept\n"  # the same volume, not a new one
    if step in ("after-the-container", "after-the-files"):
        # The container the dead controller created is adopted, not replaced.
        assert [name for name, _ in left["containers"]] == [found[0].name]
    assert "name: killed" in exec_sh(found[0], "cat /configs/config.yaml")

    ws.kubectl.run("delete", "--wait=false", "workspace", "killed")
    wait_until(
        lambda: "killed" not in ws.kubectl.run("get", "workspaces", "-o", "name"), timeout=DELETE_TIMEOUT
    )
    assert _docker_state(ws, uid) == {"containers": [], "volumes": []}


@pytest.mark.parametrize("held", ["container-removal", "volume-removal"])
def test_killed_during_deletion_the_next_controller_finishes_it_and_releases_the_finalizer(
    ws: WorkspaceHarness, daemon_relay: DaemonRelay, held: str
) -> None:
    first = ws.start_controller(DOCKER_HOST=daemon_relay.url)
    ws.apply(workspace_manifest("doomed"))
    uid = ws.wait_ready("doomed")["metadata"]["uid"]
    pattern = rb"DELETE " + V + (rb"/containers/" if held == "container-removal" else rb"/volumes/")
    hold = daemon_relay.hold(pattern)

    ws.kubectl.run("delete", "--wait=false", "workspace", "doomed")
    hold.wait(HOLD_TIMEOUT)
    first.kill()
    hold.released.set()
    obj = ws.get("doomed")
    assert "molecule.ai/workspace-cleanup" in obj["metadata"]["finalizers"], "the finalizer held on"
    print(f"\n{held}: the killed controller left {_docker_state(ws, uid)}")

    ws.start_controller()  # it first sees the Workspace while it is being deleted
    wait_until(
        lambda: "doomed" not in ws.kubectl.run("get", "workspaces", "-o", "name"), timeout=DELETE_TIMEOUT
    )
    assert _docker_state(ws, uid) == {"containers": [], "volumes": []}


def test_a_deletion_while_docker_is_down_keeps_the_finalizer_retries_and_completes_when_it_returns(
    ws: WorkspaceHarness, daemon_relay: DaemonRelay
) -> None:
    ws.start_controller(DOCKER_HOST=daemon_relay.url, WC_DOCKER_TIMEOUT="2")
    ws.apply(workspace_manifest("orphaned-soon"))
    uid = ws.wait_ready("orphaned-soon")["metadata"]["uid"]

    daemon_relay.go_away()
    ws.kubectl.run("delete", "--wait=false", "workspace", "orphaned-soon")

    def reported() -> dict[str, Any] | None:
        obj = ws.get("orphaned-soon")
        synced: dict[str, Any] = condition(obj, "Synced") or {}
        failing = obj["status"].get("phase") == "Terminating" and synced.get("status") == "False"
        return obj if failing else None

    obj = wait_until(reported, timeout=60, what="Terminating with Synced=False while Docker is away")
    assert "molecule.ai/workspace-cleanup" in obj["metadata"]["finalizers"]
    assert stalled_reason(obj) is None
    refusals = len(daemon_relay.refused_at)
    wait_until(lambda: len(daemon_relay.refused_at) >= refusals + 2, timeout=30, what="the removal retried")
    assert len(containers_of(ws.docker, uid)) == 1  # nothing removed while the daemon could not be asked

    daemon_relay.come_back()
    wait_until(
        lambda: _gone(ws, "orphaned-soon"),
        timeout=DELETE_TIMEOUT,
        what="the deletion completed once Docker returned",
    )
    assert _docker_state(ws, uid) == {"containers": [], "volumes": []}
    print(f"\nconnection attempts refused while Docker was away: {len(daemon_relay.refused_at)}")
