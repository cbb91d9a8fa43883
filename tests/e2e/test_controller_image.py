"""The controller from its image (`make image`): run with `docker run` as deploy/ runs it (UID 65532, a
read-only root filesystem, only /tmp writable), under the non-admin identity of deploy/'s RBAC, driving
the Docker daemon through its socket; a Workspace goes through its lifecycle."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support.polling import wait_until
from tests.support.stack import ControlPlane, Registry, free_port
from tests.support.workspaces import INSTANCE_LABEL, WorkspaceHarness, containers_of, workspace_manifest

pytestmark = pytest.mark.e2e


@pytest.fixture
def flat_kubeconfig(control_plane: ControlPlane, installed: object, tmp_path: Path) -> Path:
    """The controller's non-admin kubeconfig with its certificates inline, readable by UID 65532."""
    path = tmp_path / "kubeconfig"
    result = subprocess.run(
        [
            control_plane.kubectl,
            "--kubeconfig",
            str(control_plane.controller_kubeconfig),
            "config",
            "view",
            "--raw",
            "--flatten",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    path.write_text(result.stdout)
    path.chmod(0o644)
    return path


@pytest.fixture
def image_controller(
    docker_client: docker.DockerClient, controller_image: str, flat_kubeconfig: Path, registry: Registry
) -> Iterator[tuple[docker.models.containers.Container, str, float]]:
    socket = "/var/run/docker.sock"
    instance = f"img-{secrets.token_hex(4)}"
    started = time.monotonic()
    container = docker_client.containers.run(
        controller_image,
        detach=True,
        name=f"wc-{instance}",
        network_mode="host",
        user="65532:65532",
        group_add=[str(os.stat(socket).st_gid)],
        read_only=True,
        tmpfs={"/tmp": "size=16m"},
        volumes={
            str(flat_kubeconfig): {"bind": "/kube/config", "mode": "ro"},
            socket: {"bind": socket, "mode": "rw"},
        },
        environment={
            "KUBECONFIG": "/kube/config",
            "WC_INSTANCE": instance,
            "MOLECULE_IMAGE_REGISTRY": registry.prefix,
            "WC_METRICS_PORT": str(free_port()),
            "WC_LIVENESS": f"http://127.0.0.1:{free_port()}/healthz",
        },
    )
    try:
        yield container, instance, started
    finally:
        print(container.logs().decode()[-3000:])
        container.remove(force=True)
        selector = {"label": [f"{INSTANCE_LABEL}={instance}"]}
        for leftover in docker_client.containers.list(all=True, filters=selector):
            leftover.remove(force=True, v=True)
        for volume in docker_client.volumes.list(filters=selector):
            volume.remove(force=True)


def test_the_controller_image_runs_a_workspace_through_its_lifecycle(
    ws: WorkspaceHarness, image_controller: tuple[docker.models.containers.Container, str, float]
) -> None:
    container, instance, started = image_controller
    wait_until(lambda: b"DockerHost local is Ready" in container.logs(), timeout=60, what="the controller up")
    print(f"controller image: up (its Docker host Ready) {time.monotonic() - started:.1f}s after docker run")
    container.reload()
    assert container.attrs["Config"]["User"] == "65532:65532"
    assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True

    ws.apply(workspace_manifest("from-image", {"env": [{"name": "STAGE", "value": "1"}]}))
    obj = ws.wait_ready("from-image")
    uid = obj["metadata"]["uid"]
    (agent,) = containers_of(ws.docker, uid)
    assert agent.labels[INSTANCE_LABEL] == instance
    assert "STAGE=1" in agent.attrs["Config"]["Env"]

    ws.patch_spec("from-image", {"env": [{"name": "STAGE", "value": "2"}]})
    ws.wait_for(
        "from-image",
        lambda o: (
            (o["status"].get("container") or {}).get("id") not in (None, agent.id)
            and o["status"]["phase"] == "Running"
        ),
        "recreated with the new env",
    )

    ws.kubectl.run("delete", "workspace", "from-image", "--wait=true", timeout=120)
    wait_until(lambda: containers_of(ws.docker, uid) == [], timeout=60, what="its container removed")
    container.reload()
    assert container.status == "running"
    assert b"Traceback" not in container.logs()
