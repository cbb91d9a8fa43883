"""A stack of the benchmark's own: a registry, a kube-apiserver + etcd with the CRDs and RBAC applied, and
controller processes (`python -m controller`) against them; all of it removed again, even on failure.

Everything Docker-side the run makes is found again by label for the cleanup: the controller instances'
`molecule.ai/controller-instance` and, on containers the benchmark makes by hand, `RUN_LABEL`.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors

from benchmarks.procstat import cpu_seconds, rss_mib
from tests.support import stack as local
from tests.support.controller_process import ControllerProcess
from tests.support.kubectl import Kubectl
from tests.support.metrics import scrape
from tests.support.polling import wait_until
from tests.support.workspaces import INSTANCE_LABEL

NAMESPACE = "scale"
RUN_LABEL = "molecule.bench/run"
NO_HEALTHCHECK_RUNTIME = "langgraph"
"""The runtime whose image is the test agent rebuilt without its HEALTHCHECK (WC_RUNTIME_IMAGES)."""
HEALTHCHECK_RUNTIME = "crewai"
"""The runtime whose image is the test agent rebuilt with a health check at a production interval
(`REALISTIC_HEALTHCHECK`): the test image's own checks every 2 s, for fast tests, and 100 of them keep
a 2-core machine's load near 60, which measures the machine rather than the controller."""
REALISTIC_HEALTHCHECK = (
    "HEALTHCHECK --interval=10s --timeout=5s --retries=3 "
    'CMD ["/bin/wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8000/health"]'
)


@dataclass
class Controller:
    proc: ControllerProcess
    port: int

    @property
    def pid(self) -> int:
        assert self.proc.proc is not None
        return self.proc.proc.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> float:
        return rss_mib(self.pid)

    def restart(self) -> None:
        self.proc.start()
        wait_until(lambda: scrape(self.port), timeout=60, what="the controller's metrics endpoint")


@dataclass
class StackSession:
    state: Path
    registry: local.Registry
    plane: local.ControlPlane
    docker: docker.DockerClient
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    instances: list[str] = field(default_factory=list)
    controllers: list[Controller] = field(default_factory=list)

    @property
    def admin(self) -> Kubectl:
        return Kubectl(self.plane.kubectl, self.plane.admin_kubeconfig)

    @property
    def kubectl(self) -> Kubectl:
        return self.admin.in_namespace(NAMESPACE)

    def instance(self, role: str) -> str:
        """A controller instance name of this run; its Docker objects are removed at the end."""
        name = f"bench-{self.run_id}-{role}"
        self.instances.append(name)
        return name

    def network(self, instance: str) -> str:
        return f"{instance}-net"

    @property
    def no_healthcheck_image(self) -> str:
        return f"{self.registry.address}/bench/agent-no-healthcheck:latest"

    @property
    def healthcheck_image(self) -> str:
        return f"{self.registry.address}/bench/agent-healthcheck-10s:latest"

    @property
    def runtime_images(self) -> str:
        """WC_RUNTIME_IMAGES: the two benchmark images."""
        return (
            f"{NO_HEALTHCHECK_RUNTIME}={self.no_healthcheck_image},"
            f"{HEALTHCHECK_RUNTIME}={self.healthcheck_image}"
        )

    def start_controller(self, instance: str, **env: str) -> Controller:
        port = local.free_port()
        proc = ControllerProcess(
            env={
                "KUBECONFIG": str(self.plane.controller_kubeconfig),
                "WC_INSTANCE": instance,
                "MOLECULE_IMAGE_REGISTRY": self.registry.prefix,
                "MOLECULE_NETWORK": self.network(instance),
                "WC_RUNTIME_IMAGES": self.runtime_images,
                "WC_METRICS_PORT": str(port),
                "WC_LIVENESS": f"http://127.0.0.1:{local.free_port()}/healthz",
                **env,
            },
            log_path=self.state / f"{instance}.log",
        )
        controller = Controller(proc, port)
        self.controllers.append(controller)
        controller.restart()
        return controller

    def log_tail(self, lines: int = 40) -> str:
        tails = []
        for controller in self.controllers:
            tails.extend(controller.proc.logs().splitlines()[-lines:])
        return "\n".join(tails)

    def remove_docker_objects(self) -> None:
        selectors = [f"{INSTANCE_LABEL}={i}" for i in self.instances] + [f"{RUN_LABEL}={self.run_id}"]
        for selector in selectors:
            for container in self.docker.containers.list(all=True, filters={"label": selector}):
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    container.remove(force=True, v=True)
            for volume in self.docker.volumes.list(filters={"label": selector}):
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    volume.remove(force=True)
            for network in self.docker.networks.list(filters={"label": selector}):
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    network.remove()
        for instance in self.instances:
            for network in self.docker.networks.list(names=[self.network(instance)]):
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    network.remove()


def _build_with(client: docker.DockerClient, base: str, healthcheck: str, ref: str) -> None:
    dockerfile = f"FROM {base}\n{healthcheck}\n".encode()
    client.images.build(fileobj=io.BytesIO(dockerfile), tag=ref, rm=True)
    repository, _, tag = ref.rpartition(":")
    for line in client.images.push(repository, tag=tag, stream=True, decode=True):
        if "error" in line:
            raise RuntimeError(f"pushing {ref}: {line['error']}")


def _install(admin: Kubectl) -> None:
    admin.run("apply", "-f", str(local.REPO / "crds"))
    admin.run("apply", "-f", str(local.REPO / "deploy" / "base" / "namespace.yaml"))
    admin.run("apply", "-f", str(local.REPO / "deploy" / "base" / "rbac.yaml"))
    admin.run("wait", "--for=condition=Established", "--timeout=60s", "crd/workspaces.molecule.ai")
    admin.run("create", "namespace", NAMESPACE)


@contextlib.contextmanager
def stack_session() -> Iterator[StackSession]:
    local.ensure_docker()
    client = docker.from_env(timeout=120)
    with tempfile.TemporaryDirectory(prefix="wc-scale-") as tmp:
        state = Path(tmp)
        with contextlib.ExitStack() as stack:
            stack.callback(client.close)
            registry = local.start_registry("scale", state)
            stack.callback(registry.stop)
            local.push_test_images(registry)
            plane = local.start_control_plane(state / "controlplane")
            stack.callback(plane.stop)
            session = StackSession(state, registry, plane, client)
            stack.callback(session.remove_docker_objects)
            stack.callback(lambda: [c.proc.stop() for c in session.controllers])
            base = registry.image(NO_HEALTHCHECK_RUNTIME)
            _build_with(client, base, "HEALTHCHECK NONE", session.no_healthcheck_image)
            _build_with(client, base, REALISTIC_HEALTHCHECK, session.healthcheck_image)
            _install(session.admin)
            try:
                yield session
            except BaseException:
                print(f"--- controller log tail ---\n{session.log_tail()}")
                raise
