"""Session-scoped real stack (Docker Engine, registries, kube-apiserver + etcd) and per-test helpers.

Everything here is real and started by the project's own hack/ scripts. Unit tests use none of it:
the fixtures start their part only when a test asks for it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from controller.api.crd import RESOURCES
from tests.support.controller_process import ControllerProcess
from tests.support.kubectl import Kubectl
from tests.support.stack import (
    REPO,
    ControlPlane,
    Registry,
    ensure_docker,
    free_port,
    push_test_images,
    start_control_plane,
    start_registry,
)

_controllers_key = pytest.StashKey[list[ControllerProcess]]()


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    ensure_docker()
    client = docker.from_env(timeout=60)
    yield client
    client.close()


@pytest.fixture(scope="session")
def stack_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def registry(docker_client: docker.DockerClient, stack_state: Path) -> Iterator[Registry]:
    """An open registry holding the test agent as <prefix>/workspace-template-<runtime>:latest."""
    reg = start_registry("open", stack_state)
    push_test_images(reg)
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def auth_registry(docker_client: docker.DockerClient, stack_state: Path) -> Iterator[Registry]:
    """A registry that needs htpasswd credentials, holding the same test images."""
    reg = start_registry("auth", stack_state, with_auth=True)
    push_test_images(reg)
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def control_plane(stack_state: Path) -> Iterator[ControlPlane]:
    cp = start_control_plane(stack_state / "controlplane")
    yield cp
    cp.stop()


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane) -> Kubectl:
    """kubectl as cluster admin."""
    return Kubectl(control_plane.kubectl, control_plane.admin_kubeconfig)


@pytest.fixture(scope="session")
def installed(kubectl: Kubectl) -> Kubectl:
    """The CRDs and the controller's RBAC from deploy/ applied, the CRDs Established."""
    kubectl.run("apply", "-f", str(REPO / "crds"))
    kubectl.run("apply", "-f", str(REPO / "deploy" / "base" / "namespace.yaml"))
    kubectl.run("apply", "-f", str(REPO / "deploy" / "base" / "rbac.yaml"))
    crds = [f"crd/{resource.name}" for resource in RESOURCES]
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s", *crds)
    return kubectl


@pytest.fixture
def namespace(installed: Kubectl, request: pytest.FixtureRequest) -> str:
    """A fresh namespace per test, never deleted (no kube-controller-manager: it would stay Terminating)."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{slug}-{secrets.token_hex(3)}"
    installed.run("create", "namespace", name)
    return name


@pytest.fixture
def start_controller(
    control_plane: ControlPlane,
    docker_client: docker.DockerClient,
    installed: Kubectl,
    registry: Registry,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., ControllerProcess]]:
    """Start `python -m controller` as its own process under the non-admin identity of deploy/'s RBAC.

    Each test gets its own controller instance label, so tests sharing the daemon never touch each
    other's containers. Images come from the session's open registry. Logs are attached to the report
    of a failing test. Keyword arguments are extra environment variables (settings).
    """
    started: list[ControllerProcess] = []
    request.node.stash[_controllers_key] = started
    instance = f"test-{secrets.token_hex(4)}"

    def start(*args: str, **env: str) -> ControllerProcess:
        proc = ControllerProcess(
            env={
                "KUBECONFIG": str(control_plane.controller_kubeconfig),
                "WC_INSTANCE": instance,
                "MOLECULE_IMAGE_REGISTRY": registry.prefix,
                "WC_LOG_LEVEL": "DEBUG",
                "WC_METRICS_PORT": str(free_port()),
                "WC_LIVENESS": f"http://127.0.0.1:{free_port()}/healthz",
                **env,
            },
            log_path=tmp_path / f"controller-{len(started)}.log",
            args=args,
        )
        started.append(proc.start())
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call" and report.failed:
        procs: list[ControllerProcess] = item.stash.get(_controllers_key, [])
        for i, proc in enumerate(procs):
            report.sections.append((f"controller log #{i}", proc.logs()[-20000:]))
