"""Sandboxed runtimes against the real stack: a Docker daemon of the test's own offering gVisor (Debian's
`runsc`) beside the machine's, which does not. A Workspace asking for runsc (itself, or through its
template) is placed there and really runs under gVisor; one asking for a runtime no host offers is
Unschedulable saying so; a namespace whose policy requires runsc gets nothing else.

gVisor's own network stack does not start on this kernel (its check for the root network namespace
misreads newer kernels), so the daemon runs runsc with `--network=host`: the sandbox uses the network
namespace Docker made for the container, and the published port works as with runc. In that mode this
gVisor (Debian's, of 2022) fails busybox wget's reads inside the sandbox (EAGAIN), so the test image's
HEALTHCHECK never passes there: these tests wait for the agent to run and answer on its endpoint, not
for Ready.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from controller.core.policy import runtime_message
from tests.support.relay import daemon_socket_path
from tests.support.stack import OwnDaemon
from tests.support.workspaces import WorkspaceHarness, agent_get, exec_sh, workspace_manifest

pytestmark = pytest.mark.e2e

RUNSC = Path("/usr/bin/runsc")
CAPACITY = {"cpus": 8, "memoryMiB": 4096}
GVISOR_KERNEL = "Linux version 4.4.0"
"""What gVisor's kernel says it is in /proc/version (the host's kernel is far newer)."""


@pytest.fixture
def gvisor(
    ws: WorkspaceHarness, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OwnDaemon, docker.DockerClient]]:
    """A daemon of the test's own with runsc registered."""
    assert RUNSC.exists(), "gVisor (Debian's runsc package) is not installed: .ci/run installs it"
    directory = Path(tmp_path_factory.mktemp("gv", numbered=True))
    config = directory / "daemon.json"
    config.write_text(
        json.dumps({"runtimes": {"runsc": {"path": str(RUNSC), "runtimeArgs": ["--network=host"]}}})
    )
    daemon = OwnDaemon(directory, bridge_cidr="10.222.249.1/24", flags=(f"--config-file={config}",)).start()
    client = docker.DockerClient(base_url=daemon.url, timeout=60)
    try:
        yield daemon, client
    finally:
        for proc in ws.controllers:  # first: a running controller would put back what is removed next
            proc.stop()
        client.close()
        daemon.remove()
        shutil.rmtree(directory, ignore_errors=True)


def running(ws: WorkspaceHarness, name: str) -> dict[str, Any]:
    """The Workspace once its container runs and it has an endpoint."""

    def up(obj: dict[str, Any]) -> bool:
        status = obj.get("status") or {}
        return (status.get("container") or {}).get("state") == "running" and bool(status.get("endpoint"))

    return ws.wait_for(name, up, "its container running", timeout=120)


def test_a_workspace_asking_for_gvisor_runs_under_it_on_the_host_that_offers_it(
    ws: WorkspaceHarness, gvisor: tuple[OwnDaemon, docker.DockerClient]
) -> None:
    daemon, client = gvisor
    socket_path = daemon_socket_path()
    assert socket_path is not None
    plain = ws.add_host("plain", f"unix://{socket_path}", capacity=CAPACITY)
    sandboxed = ws.add_host("gvisor", daemon.url, capacity=CAPACITY)
    ws.start_controller(WC_LOCAL_HOST="")
    ws.apply(workspace_manifest("boxed", {"containerRuntime": "runsc"}))
    ws.apply(workspace_manifest("unboxed", {}))
    ws.apply(workspace_manifest("kata", {"containerRuntime": "kata"}))

    ready = running(ws, "boxed")
    assert ready["status"]["host"] == sandboxed
    [container] = client.containers.list(filters={"label": f"molecule.ai/workspace-uid={ws.uid('boxed')}"})
    assert container.attrs["HostConfig"]["Runtime"] == "runsc"
    assert exec_sh(container, "cat /proc/version").startswith(GVISOR_KERNEL)
    assert agent_get(ready["status"]["endpoint"], "/health").strip() == b"ok"

    stalled = ws.wait_stalled("kata", "Unschedulable")
    assert "under container runtime kata" in stalled["message"]
    assert f"{sandboxed} does not offer the container runtime kata (it offers " in stalled["message"]
    assert ws.containers("kata") == []

    assert ws.wait_ready("unboxed")["status"]["host"] in (plain, sandboxed)
    runtimes = ws.get_host(sandboxed)["status"]["info"]["runtimes"]
    assert "runsc" in runtimes
    assert "runsc" not in ws.get_host(plain)["status"]["info"]["runtimes"]


def test_a_namespace_requiring_gvisor_gets_it_through_a_template_and_nothing_else(
    ws: WorkspaceHarness, gvisor: tuple[OwnDaemon, docker.DockerClient]
) -> None:
    daemon, client = gvisor
    ws.add_host("gvisor", daemon.url, capacity=CAPACITY)
    ws.grant(requireContainerRuntime="runsc")
    ws.start_controller()
    ws.apply(
        yaml.safe_dump(
            {
                "apiVersion": "molecule.ai/v1alpha1",
                "kind": "WorkspaceTemplate",
                "metadata": {"name": "sandboxed"},
                "spec": {"template": {"containerRuntime": "runsc"}, "allowOverrides": ["config"]},
            }
        )
    )
    ws.apply(workspace_manifest("plain", {}))
    ws.apply(workspace_manifest("templated", {"templateRef": {"name": "sandboxed"}}))

    denied = ws.wait_stalled("plain", "PolicyDenied")
    assert denied["message"] == runtime_message(None, ws.namespace, frozenset({"runsc"}))
    assert ws.containers("plain") == []

    assert running(ws, "templated")["status"]["host"].startswith("gvisor-")
    [container] = client.containers.list(
        filters={"label": f"molecule.ai/workspace-uid={ws.uid('templated')}"}
    )
    assert exec_sh(container, "cat /proc/version").startswith(GVISOR_KERNEL)
