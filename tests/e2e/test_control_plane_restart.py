"""The kube-apiserver restarted (etcd kept), and etcd restarted, under a running controller: it reconnects,
its watches resume (a change made afterwards is reconciled), nothing is removed, and no status flaps.

These restarts would disturb every other test on the session's control plane, so this test starts one of
its own (the same scripts, other ports) and its own controller process against it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.support.controller_process import ControllerProcess
from tests.support.kubectl import Kubectl
from tests.support.polling import wait_until
from tests.support.stack import REPO, ControlPlane, Registry, free_port
from tests.support.workspaces import (
    INSTANCE_LABEL,
    MANAGED_LABEL,
    condition,
    containers_of,
    is_ready,
    workspace_manifest,
)

pytestmark = pytest.mark.e2e

NAMESPACE = "restarts"
TIMEOUT = 90.0


@pytest.fixture
def controller(
    own_control_plane: ControlPlane, registry: Registry, docker_client: docker.DockerClient, tmp_path: Path
) -> Iterator[tuple[Kubectl, ControllerProcess]]:
    admin = Kubectl(own_control_plane.kubectl, own_control_plane.admin_kubeconfig)
    admin.run("apply", "-f", str(REPO / "crds"))
    admin.run("apply", "-f", str(REPO / "deploy" / "base" / "namespace.yaml"))
    admin.run("apply", "-f", str(REPO / "deploy" / "base" / "rbac.yaml"))
    admin.run("wait", "--for=condition=Established", "--timeout=60s", "crd/workspaces.molecule.ai")
    admin.run("create", "namespace", NAMESPACE)
    instance = f"test-{secrets.token_hex(4)}"
    proc = ControllerProcess(
        env={
            "KUBECONFIG": str(own_control_plane.controller_kubeconfig),
            "WC_INSTANCE": instance,
            "MOLECULE_IMAGE_REGISTRY": registry.prefix,
            "WC_LOG_LEVEL": "DEBUG",
            "WC_METRICS_PORT": str(free_port()),
            "WC_LIVENESS": f"http://127.0.0.1:{free_port()}/healthz",
        },
        log_path=tmp_path / "controller.log",
    ).start()
    yield admin.in_namespace(NAMESPACE), proc
    proc.stop()
    selector = {"label": [f"{MANAGED_LABEL}=true", f"{INSTANCE_LABEL}={instance}"]}
    for container in docker_client.containers.list(all=True, filters=selector):
        container.remove(force=True, v=True)
    for volume in docker_client.volumes.list(filters=selector):
        volume.remove(force=True)


def _ready(kubectl: Kubectl, name: str, generation: int = 1) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj: dict[str, Any] = kubectl.get_json("workspace", name)
        return obj if is_ready(obj) and obj["metadata"]["generation"] >= generation else None

    return wait_until(check, timeout=TIMEOUT, interval=0.3, what=f"{name} Ready at generation {generation}")


def _transitions(obj: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["lastTransitionTime"] for c in obj["status"]["conditions"]}


@pytest.mark.parametrize("which", ["apiserver", "etcd"])
def test_a_control_plane_restart_is_survived_without_removals_or_flapping(
    own_control_plane: ControlPlane,
    controller: tuple[Kubectl, ControllerProcess],
    docker_client: docker.DockerClient,
    which: str,
) -> None:
    kubectl, proc = controller
    for name in ("steady", "edited"):
        kubectl.apply(workspace_manifest(name))
    before = {name: _ready(kubectl, name) for name in ("steady", "edited")}
    uids = {name: obj["metadata"]["uid"] for name, obj in before.items()}
    ids = {name: obj["status"]["container"]["id"] for name, obj in before.items()}

    own_control_plane.restart(which)
    assert proc.running, "the controller survived the restart"

    kubectl.run(
        "patch",
        "workspace",
        "edited",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"env": [{"name": "AFTER", "value": which}]}}),
    )
    edited = _ready(kubectl, "edited", generation=2)
    assert edited["status"]["container"]["id"] != ids["edited"], "the watch resumed: the change was applied"

    steady: dict[str, Any] = kubectl.get_json("workspace", "steady")
    assert steady["status"]["container"]["id"] == ids["steady"]
    assert _transitions(steady) == _transitions(before["steady"]), "no condition flapped"
    assert (condition(steady, "Synced") or {}).get("status") == "True"
    for name, uid in uids.items():
        found = containers_of(docker_client, uid)
        assert len(found) == 1, f"{name}: {[c.name for c in found]}"
        assert found[0].status == "running"
    print(f"\n{which} restarted: both Workspaces Ready, the steady one untouched ({ids['steady'][:12]})")
