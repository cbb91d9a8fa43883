"""The `ws` fixture every end-to-end test of the controller uses, and a control plane of a test's own."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests.support.controller_process import ControllerProcess
from tests.support.kubectl import Kubectl
from tests.support.relay import DaemonRelay, daemon_socket_path
from tests.support.stack import HACK, ControlPlane, run_script, start_control_plane
from tests.support.workspaces import WorkspaceHarness

CONTROLLER_IMAGE = "workspace-controller:e2e"


@pytest.fixture(scope="session")
def controller_image(docker_client: docker.DockerClient) -> str:
    """`make image` (hack/image/build.sh), tagged for the tests: the controller's image, and the gateway's
    of isolated Workspaces. Built once per session."""
    started = time.monotonic()
    run_script("bash", HACK / "image" / "build.sh", CONTROLLER_IMAGE)
    size = docker_client.images.get(CONTROLLER_IMAGE).attrs["Size"] / 2**20
    print(f"controller image {CONTROLLER_IMAGE}: {size:.0f} MiB, built in {time.monotonic() - started:.0f}s")
    return CONTROLLER_IMAGE


@pytest.fixture
def ws(
    installed: Kubectl,
    namespace: str,
    docker_client: docker.DockerClient,
    start_controller: Callable[..., ControllerProcess],
) -> Iterator[WorkspaceHarness]:
    """A harness on the test's namespace; afterwards its controllers stop, their Docker objects go, and the
    namespace's Workspaces are released (finalizer stripped) and deleted, so no later test sees them."""
    harness = WorkspaceHarness(installed.in_namespace(namespace), namespace, docker_client, start_controller)
    yield harness
    harness.cleanup()


@pytest.fixture
def daemon_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonRelay]:
    """A relay in front of the real Docker daemon's socket, for a controller to be pointed at
    (DOCKER_HOST=relay.url): cut it to make the daemon go away, or hold a request to stop between steps."""
    upstream = daemon_socket_path()
    assert upstream is not None, "the relay needs the daemon on a unix socket"
    directory = Path(tmp_path_factory.mktemp("relay", numbered=True))  # socket paths are short
    relay = DaemonRelay(directory / "d.sock", upstream)
    yield relay
    relay.close()


@pytest.fixture
def own_control_plane(tmp_path: Path) -> Iterator[ControlPlane]:
    """A kube-apiserver + etcd for one test (the same scripts, other ports), for what would disturb the
    session's control plane: restarts, or cluster-wide objects applied for real."""
    plane = start_control_plane(tmp_path / "controlplane")
    yield plane
    plane.stop()
