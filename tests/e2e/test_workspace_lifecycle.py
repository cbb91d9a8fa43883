"""A Workspace over its life: spec changes recreate the container and keep the volumes, anything else
touches nothing, `kubectl wait` never reports a stale Ready, suspend/resume, and deletion per
deletionPolicy. Events tell the story in `kubectl describe`.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.support.kubectl import KubectlError
from tests.support.polling import wait_until
from tests.support.workspaces import (
    WorkspaceHarness,
    agent_env,
    condition,
    containers_of,
    exec_sh,
    is_ready,
    short_id,
    volumes_of,
    workspace_manifest,
)

pytestmark = pytest.mark.e2e


def _env_spec(value: str) -> dict[str, Any]:
    return {"env": [{"name": "MARK", "value": value}]}


def _ready_with_new_container(ws: WorkspaceHarness, name: str, old_id: str) -> dict[str, Any]:
    return ws.wait_for(
        name,
        lambda o: is_ready(o) and (o["status"].get("container") or {}).get("id") not in (None, old_id),
        "Ready on a new container",
    )


def _volume_names(ws: WorkspaceHarness, uid: str) -> set[str]:
    """The workspace's volumes. (Docker's CreatedAt of a local volume is the mtime of its data directory,
    which moves whenever a file is added at its top, so it cannot tell a kept volume from a new one: what
    survives in it can.)"""
    return set(volumes_of(ws.docker, uid))


def test_a_spec_change_recreates_the_container_and_keeps_its_volumes(ws: WorkspaceHarness) -> None:
    """An env change gives a new container (the old one is gone) running the new env; what the agent
    wrote to /workspace and /configs survives, on the very same volumes. describe shows the events."""
    ws.apply(workspace_manifest("life", _env_spec("one")))
    ws.start_controller()
    first = ws.wait_ready("life")
    uid = first["metadata"]["uid"]
    old = ws.container("life")
    exec_sh(old, "echo kept > /workspace/data.txt && echo agent-state > /configs/agent-notes.txt")
    volumes_before = _volume_names(ws, uid)
    assert volumes_before == {f"ws-{short_id(uid)}-configs", f"ws-{short_id(uid)}-workspace"}

    ws.apply(workspace_manifest("life", _env_spec("two")))
    second = _ready_with_new_container(ws, "life", old.id)
    new = ws.container("life")  # exactly one container: the old one was removed
    assert new.id == second["status"]["container"]["id"] != old.id
    assert new.name == old.name
    assert agent_env(second["status"]["endpoint"])["MARK"] == "two"
    assert exec_sh(new, "cat /workspace/data.txt") == "kept\n"
    assert exec_sh(new, "cat /configs/agent-notes.txt") == "agent-state\n"
    assert _volume_names(ws, uid) == volumes_before
    assert new.labels["molecule.ai/config-hash"] != old.labels["molecule.ai/config-hash"]

    ws.wait_event("life", "Recreating")
    described = ws.describe("life")
    events = described[described.index("Events:") :]
    for reason in ("Pulled", "Created", "Started", "Recreating"):
        assert reason in events, f"{reason} not in kubectl describe's events"
    assert "a changed configuration" in events


def test_no_op_reapply_metadata_and_status_changes_touch_nothing(ws: WorkspaceHarness) -> None:
    """Re-applying the same manifest, changing a label and writing to status leave the container alone:
    after one more reconcile has provably run (Flux's requestedAt, echoed in status), it is the same
    container, never restarted, and nothing new was created."""
    manifest = workspace_manifest("steady", _env_spec("same"))
    ws.apply(manifest)
    ws.start_controller()
    obj = ws.wait_ready("steady")
    before = ws.container("steady")

    ws.apply(manifest)
    ws.kubectl.run("label", "workspace", "steady", "team=blue")
    ws.kubectl.run(
        "patch",
        "workspace",
        "steady",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status": {"phase": "Pending"}}',
    )
    after_obj = ws.sync("steady", f"noop-{secrets.token_hex(3)}")

    assert after_obj["metadata"]["generation"] == obj["metadata"]["generation"]
    after = ws.container("steady")
    assert after.id == before.id
    assert after.attrs["State"]["StartedAt"] == before.attrs["State"]["StartedAt"]
    assert after.attrs["RestartCount"] == 0
    assert after_obj["status"]["phase"] == "Running"  # the next pass reported the truth again
    assert is_ready(after_obj)
    reasons = ws.event_reasons("steady")
    assert reasons.count("Created") == 1
    assert "Recreating" not in reasons


def test_kubectl_wait_after_an_edit_does_not_report_a_stale_ready(ws: WorkspaceHarness) -> None:
    """Conditions carry observedGeneration, so `kubectl wait --for=condition=Ready` after an edit waits
    for the edited generation. The edit is made while no controller runs, so the stored status still
    says Ready=True (for the previous generation) and stays that way: kubectl wait must not accept it.
    Once a controller runs again, the wait returns, and by then the agent runs the new env."""
    ws.apply(workspace_manifest("edited", _env_spec("before")))
    first_controller = ws.start_controller()
    first = ws.wait_ready("edited")
    ready = condition(first, "Ready")
    assert ready is not None
    assert ready["observedGeneration"] == first["metadata"]["generation"]

    first_controller.stop()
    ws.apply(workspace_manifest("edited", _env_spec("after")))
    edited = ws.get("edited")
    assert edited["metadata"]["generation"] == first["metadata"]["generation"] + 1
    stale = condition(edited, "Ready")
    assert stale is not None
    assert (stale["status"], stale["observedGeneration"]) == ("True", first["metadata"]["generation"])
    with pytest.raises(KubectlError, match="timed out"):
        ws.kubectl.run("wait", "--for=condition=Ready", "--timeout=3s", "workspace/edited")

    ws.start_controller()
    second = ws.wait_ready("edited")
    ready = condition(second, "Ready")
    assert ready is not None
    assert ready["status"] == "True"
    assert ready["observedGeneration"] == second["metadata"]["generation"]
    assert second["status"]["observedGeneration"] == second["metadata"]["generation"]
    assert agent_env(second["status"]["endpoint"])["MARK"] == "after"


def test_suspend_stops_the_container_keeps_it_and_its_volumes_and_resume_starts_it(
    ws: WorkspaceHarness,
) -> None:
    """spec.suspend: the container is stopped (not removed) and stays stopped, its volumes and what is in
    them stay, Ready=False Suspended (Synced stays True: nothing failed). Resuming starts the same
    container on the same data."""
    ws.apply(workspace_manifest("nap"))
    ws.start_controller()
    uid = ws.wait_ready("nap")["metadata"]["uid"]
    old = ws.container("nap")
    exec_sh(old, "echo before-nap > /workspace/data.txt && echo nap-notes > /configs/agent-notes.txt")
    volumes_before = _volume_names(ws, uid)

    ws.patch_spec("nap", {"suspend": True})
    suspended = ws.wait_for(
        "nap",
        lambda o: (
            (c := condition(o, "Ready")) is not None
            and c["reason"] == "Suspended"
            and c.get("observedGeneration") == o["metadata"]["generation"]
        ),
        "Ready=False Suspended",
    )
    ready = condition(suspended, "Ready")
    synced = condition(suspended, "Synced")
    assert ready is not None
    assert ready["status"] == "False"
    assert synced is not None
    assert synced["status"] == "True"
    assert suspended["status"]["phase"] == "Suspended"
    assert "endpoint" not in suspended["status"]

    def stopped() -> bool:
        found = containers_of(ws.docker, uid)
        return len(found) == 1 and found[0].id == old.id and found[0].status == "exited"

    wait_until(stopped, timeout=30, what="the same container, stopped")
    assert _volume_names(ws, uid) == volumes_before
    assert "Suspended" in ws.event_reasons("nap")
    # Stays stopped: a forced reconcile does not start it (Docker's unless-stopped does not either).
    ws.sync("nap", "after-suspend")
    assert stopped()

    ws.patch_spec("nap", {"suspend": False})
    resumed = ws.wait_ready("nap")
    new = ws.container("nap")
    assert new.id == old.id
    assert resumed["status"]["container"]["id"] == new.id
    assert exec_sh(new, "cat /workspace/data.txt") == "before-nap\n"
    assert exec_sh(new, "cat /configs/agent-notes.txt") == "nap-notes\n"
    assert _volume_names(ws, uid) == volumes_before


def test_deletion_removes_the_container_and_volumes_per_deletion_policy(ws: WorkspaceHarness) -> None:
    """deletionPolicy Delete: container and volumes go with the Workspace. Retain: the container goes,
    the volumes stay (still labelled, so they can be found)."""
    ws.apply(workspace_manifest("doomed", {"deletionPolicy": "Delete"}))
    ws.apply(workspace_manifest("keeper", {"deletionPolicy": "Retain"}))
    ws.start_controller()
    doomed_uid = ws.wait_ready("doomed")["metadata"]["uid"]
    keeper_uid = ws.wait_ready("keeper")["metadata"]["uid"]
    kept_volumes = _volume_names(ws, keeper_uid)
    assert len(kept_volumes) == 2
    keeper = ws.container("keeper")
    exec_sh(keeper, "echo retained > /workspace/data.txt")
    image = keeper.image.id
    assert len(volumes_of(ws.docker, doomed_uid)) == 2

    ws.kubectl.run("delete", "workspace", "doomed", "keeper", "--wait=false")
    ws.kubectl.run(
        "wait", "--for=delete", "--timeout=60s", "workspace/doomed", "workspace/keeper", timeout=90
    )

    assert containers_of(ws.docker, doomed_uid) == []
    assert volumes_of(ws.docker, doomed_uid) == {}
    assert containers_of(ws.docker, keeper_uid) == []
    assert _volume_names(ws, keeper_uid) == kept_volumes
    workspace_volume = f"ws-{short_id(keeper_uid)}-workspace"
    kept = ws.docker.containers.run(
        image,
        entrypoint=["/bin/cat", "/data/data.txt"],
        volumes={workspace_volume: {"bind": "/data", "mode": "ro"}},
        remove=True,
    )
    assert kept == b"retained\n"
    deleted = {
        e["involvedObject"]["name"]: e["message"]
        for e in ws.kubectl.get_json("events")["items"]
        if e.get("reason") == "Deleted"
    }
    assert "volumes removed" in deleted["doomed"]
    assert "volumes retained" in deleted["keeper"]
