"""The `ws` fixture every end-to-end test of the controller uses."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import docker
import pytest

from tests.support.controller_process import ControllerProcess
from tests.support.kubectl import Kubectl
from tests.support.workspaces import WorkspaceHarness


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
