"""The reconciler over several hosts: where a Workspace goes, what it says when it cannot go anywhere,
what a silent host costs, and that a placement is never made twice. Each host is a FakeRuntime (an
in-memory fake of the project's own port) behind a DockerHost object in FakeKube."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from typing import Any

from controller.core import naming
from controller.core.labels import HOST_LABEL
from controller.docker import TlsFiles
from controller.kube.event_recorder import EventRecorder
from controller.kube.workspace_object import WorkspaceObject
from controller.port.errors import RuntimeUnavailable
from controller.port.runtime import ContainerRuntime
from controller.reconcile.hosts import HostConfig, HostRegistry
from controller.reconcile.policies import PolicyStore
from controller.reconcile.reconciler import Reconciler
from controller.reconcile.triggers import Triggers
from controller.settings import ControllerSettings
from tests.support.fake_kube import FakeKube
from tests.support.fake_runtime import FakeRuntime

INSTANCE = "t"
PREFIX = "reg.local/m"
IMAGE = f"{PREFIX}/workspace-template-langgraph:latest"
NS = "ns"
SILENT_OPERATIONS = (
    "info",
    "list_containers",
    "inspect_container",
    "create_container",
    "start_container",
    "pull_image",
    "inspect_image",
    "ensure_network",
    "ensure_volume",
    "list_volumes",
)


def host_body(name: str, *, memory: int = 1024, cpus: float = 4, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "uid": f"host-{name}", "generation": 1, "labels": dict(labels)},
        "spec": {"endpoint": f"unix:///run/{name}.sock", "capacity": {"cpus": cpus, "memoryMiB": memory}},
    }


def workspace(name: str, tier: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"uid": f"uid-{name}", "namespace": NS, "name": name, "generation": 1},
        "spec": {
            "tier": tier,
            "config": {"files": [{"path": "config.yaml", "content": "model: x\n"}]},
            **spec,
        },
    }


class Cluster:
    """Hosts (FakeRuntimes by name), the API (FakeKube) and one controller's reconciler."""

    def __init__(self, *hosts: dict[str, Any]) -> None:
        self.settings = ControllerSettings(instance=INSTANCE, registry_prefix=PREFIX, local_host="")
        self.kube = FakeKube()
        self.runtimes: dict[str, FakeRuntime] = {}
        for body in hosts:
            self.add_host_object(body)
        self.bodies: dict[str, dict[str, Any]] = {}
        self.registry: HostRegistry | None = None
        self.reconciler: Reconciler | None = None

    def add_host_object(self, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        self.kube.docker_hosts[name] = body
        self.runtimes.setdefault(name, FakeRuntime(registry={IMAGE: "sha256:" + "a" * 64}))

    def runtime_for(self, endpoint: str | None) -> FakeRuntime:
        name = (endpoint or "").removeprefix("unix:///run/").removesuffix(".sock")
        return self.runtimes[name]

    async def start(self) -> None:
        """A controller (process) starting: a new registry, ledger and reconciler."""

        def connect(config: HostConfig, tls: TlsFiles | None) -> ContainerRuntime:
            return self.runtime_for(config.endpoint)

        self.registry = HostRegistry(
            settings=self.settings, kube=self.kube, triggers=Triggers(), connect=connect, background=False
        )
        await self.registry.load()
        await self.check_hosts()
        self.registry.scheduler.seed(self.bodies.values())
        self.reconciler = Reconciler(
            hosts=self.registry,
            kube=self.kube,
            settings=self.settings,
            events=EventRecorder(self.kube),
            policies=PolicyStore(self.kube, default_image_prefix=PREFIX, wake_all=lambda: None),
        )

    async def check_hosts(self) -> None:
        assert self.registry is not None
        for host in self.registry.all():
            await self.registry.check(host)

    async def add_host(self, body: dict[str, Any]) -> None:
        assert self.registry is not None
        self.add_host_object(body)
        await self.registry.host_event("ADDED", body)
        await self.check_hosts()

    def apply(self, body: dict[str, Any]) -> None:
        self.bodies[body["metadata"]["name"]] = body

    async def reconcile(self, name: str) -> dict[str, Any]:
        assert self.reconciler is not None
        body = self.bodies[name]
        await self.reconciler.reconcile(WorkspaceObject.from_body(body))
        status = self.kube.statuses.get((NS, name))
        if status is not None:
            body["status"] = copy.deepcopy(status)
        await asyncio.sleep(0)  # Events are posted in the background
        return body.get("status") or {}

    async def finalize(self, name: str) -> None:
        assert self.reconciler is not None
        body = self.bodies[name]
        body["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        obj = WorkspaceObject.from_body(body)
        await self.reconciler.finalize(obj)
        self.reconciler.forget(obj.ref)
        del self.bodies[name]

    def containers_of(self, name: str) -> dict[str, int]:
        """How many containers of the Workspace each host has."""
        container = naming.container_name(self.bodies[name]["metadata"]["uid"])
        return {
            host: sum(1 for c in runtime.containers.values() if c.name == container)
            for host, runtime in self.runtimes.items()
        }

    def silence(self, host: str) -> None:
        for operation in SILENT_OPERATIONS:
            self.runtimes[host].fail(operation, RuntimeUnavailable("connection refused"), always=True)

    def wake(self, host: str) -> None:
        for operation in SILENT_OPERATIONS:
            self.runtimes[host].heal(operation)

    def events(self, name: str) -> list[tuple[str, str]]:
        return [(e.reason, e.message) for e in self.kube.events if e.workspace.name == name]


def condition(status: Mapping[str, Any], type_: str) -> tuple[str, str]:
    found = next(c for c in status.get("conditions", []) if c["type"] == type_)
    return found["status"], found["reason"]


def message(status: Mapping[str, Any], type_: str) -> str:
    return str(next(c for c in status.get("conditions", []) if c["type"] == type_)["message"])


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_workspaces_spread_and_each_runs_on_the_host_its_status_names() -> None:
    async def scenario() -> None:
        cluster = Cluster(host_body("a"), host_body("b"))
        await cluster.start()
        placed = {}
        for index in range(4):
            cluster.apply(workspace(f"w{index}"))
            status = await cluster.reconcile(f"w{index}")
            assert condition(status, "Ready") == ("True", "ContainerRunning")
            placed[f"w{index}"] = status["host"]
        assert placed == {"w0": "a", "w1": "b", "w2": "a", "w3": "b"}
        for name, host in placed.items():
            assert cluster.containers_of(name) == {"a": int(host == "a"), "b": int(host == "b")}
            assert ("Placed", f"placed on DockerHost {host}") in cluster.events(name)
            container = naming.container_name(cluster.bodies[name]["metadata"]["uid"])
            (made,) = [c for c in cluster.runtimes[host].containers.values() if c.name == container]
            assert made.labels[HOST_LABEL] == host

    run(scenario())


def test_a_pinned_and_a_selected_workspace_go_where_they_ask() -> None:
    async def scenario() -> None:
        cluster = Cluster(host_body("a", zone="x"), host_body("b", zone="y"))
        await cluster.start()
        cluster.apply(workspace("pinned", placement={"host": "b"}))
        cluster.apply(workspace("selected", placement={"hostSelector": {"matchLabels": {"zone": "x"}}}))
        assert (await cluster.reconcile("pinned"))["host"] == "b"
        assert (await cluster.reconcile("selected"))["host"] == "a"

    run(scenario())


def test_one_that_fits_nowhere_is_unschedulable_until_a_host_is_added_and_is_then_placed_there() -> None:
    async def scenario() -> None:
        cluster = Cluster(host_body("a", memory=512))
        await cluster.start()
        cluster.apply(workspace("first", tier=2))
        assert (await cluster.reconcile("first"))["host"] == "a"
        cluster.apply(workspace("second", tier=2))
        status = await cluster.reconcile("second")
        assert condition(status, "Stalled") == ("True", "Unschedulable")
        assert status["phase"] == "Pending"
        assert "a has only 0 MiB free" in message(status, "Stalled")
        assert "host" not in status
        assert cluster.containers_of("second") == {"a": 0}

        await cluster.add_host(host_body("b"))
        status = await cluster.reconcile("second")
        assert status["host"] == "b"
        assert condition(status, "Ready") == ("True", "ContainerRunning")

    run(scenario())


def test_a_deleted_workspace_frees_its_room_for_one_waiting() -> None:
    async def scenario() -> None:
        cluster = Cluster(host_body("a", memory=256))
        await cluster.start()
        cluster.apply(workspace("first"))
        await cluster.reconcile("first")
        cluster.apply(workspace("waiting"))
        assert condition(await cluster.reconcile("waiting"), "Stalled") == ("True", "Unschedulable")
        await cluster.finalize("first")
        assert (await cluster.reconcile("waiting"))["host"] == "a"

    run(scenario())


def test_a_silent_host_costs_only_its_own_workspaces_and_nothing_is_re_placed_or_removed() -> None:
    async def scenario() -> None:
        cluster = Cluster(host_body("a", memory=512), host_body("b", memory=512))
        await cluster.start()
        for name in ("on-a", "on-b", "full"):
            cluster.apply(workspace(name, tier=2))
        assert (await cluster.reconcile("on-a"))["host"] == "a"
        assert (await cluster.reconcile("on-b"))["host"] == "b"
        assert condition(await cluster.reconcile("full"), "Stalled") == ("True", "Unschedulable")

        cluster.silence("b")
        await cluster.check_hosts()
        on_b = await cluster.reconcile("on-b")
        assert condition(on_b, "Ready") == ("Unknown", "HostUnavailable")
        assert on_b["host"] == "b"
        assert condition(await cluster.reconcile("on-a"), "Ready") == ("True", "ContainerRunning")
        # Searched before b fell silent, and no container of it anywhere: still only short of room.
        assert condition(await cluster.reconcile("full"), "Stalled") == ("True", "Unschedulable")
        assert cluster.runtimes["a"].count("remove_container") == 0

        cluster.wake("b")
        await cluster.check_hosts()
        assert condition(await cluster.reconcile("on-b"), "Ready") == ("True", "ContainerRunning")
        assert cluster.containers_of("on-b") == {"a": 0, "b": 1}

    run(scenario())


def test_a_lost_status_is_rebuilt_from_where_the_container_is() -> None:
    async def scenario() -> None:
        cluster = Cluster(host_body("a"), host_body("b"))
        await cluster.start()
        cluster.apply(workspace("w0"))
        cluster.apply(workspace("w1"))
        await cluster.reconcile("w0")
        assert (await cluster.reconcile("w1"))["host"] == "b"

        # A new controller (an empty ledger) and a Workspace whose status is gone: w1 would be placed on
        # a, the emptier host now that w0 is... but its container is on b, so b it is.
        del cluster.bodies["w1"]["status"]
        cluster.kube.statuses.pop((NS, "w1"))
        await cluster.start()
        assert (await cluster.reconcile("w1"))["host"] == "b"
        assert cluster.containers_of("w1") == {"a": 0, "b": 1}

    run(scenario())


def test_a_new_controller_waits_for_a_silent_host_before_placing_a_workspace_it_knows_nothing_of() -> None:
    async def scenario() -> None:
        cluster = Cluster(host_body("a"), host_body("b"))
        await cluster.start()
        cluster.apply(workspace("w"))
        await cluster.reconcile("w")
        assert cluster.containers_of("w") == {"a": 1, "b": 0}
        # Its status was written without the host (an older version, or a controller that died in
        # between); the host that has its container is silent when a new controller starts.
        cluster.bodies["w"]["status"].pop("host")
        cluster.kube.statuses[(NS, "w")].pop("host")
        cluster.silence("a")
        await cluster.start()
        status = await cluster.reconcile("w")
        assert "waiting for DockerHost a to answer" in message(status, "Synced")
        assert cluster.containers_of("w") == {"a": 1, "b": 0}

        cluster.wake("a")
        await cluster.check_hosts()
        status = await cluster.reconcile("w")
        assert status["host"] == "a"
        assert cluster.containers_of("w") == {"a": 1, "b": 0}

    run(scenario())


def test_a_placed_workspace_whose_spec_no_longer_admits_its_host_stalls_and_is_not_moved() -> None:
    async def scenario() -> None:
        cluster = Cluster(host_body("a"), host_body("b"))
        await cluster.start()
        cluster.apply(workspace("w", placement={"host": "a"}))
        await cluster.reconcile("w")
        body = cluster.bodies["w"]
        body["spec"]["placement"] = {"host": "b"}
        body["metadata"]["generation"] += 1
        status = await cluster.reconcile("w")
        assert condition(status, "Stalled") == ("True", "PlacementConflict")
        assert status["host"] == "a"
        assert cluster.containers_of("w") == {"a": 1, "b": 0}
        assert cluster.runtimes["a"].count("remove_container") == 0

    run(scenario())


def test_deleting_a_workspace_whose_host_object_is_gone_releases_it_and_touches_no_daemon() -> None:
    async def scenario() -> None:
        cluster = Cluster(host_body("a"), host_body("b"))
        await cluster.start()
        cluster.apply(workspace("w", placement={"host": "b"}))
        await cluster.reconcile("w")
        assert cluster.registry is not None
        del cluster.kube.docker_hosts["b"]
        await cluster.registry.host_event("DELETED", host_body("b"))
        assert "b" not in {h.name for h in cluster.registry.all()}
        status = await cluster.reconcile("w")
        assert "DockerHost b, where the Workspace is placed" in message(status, "Synced")
        await cluster.finalize("w")
        assert any(reason == "HostGone" for reason, _ in cluster.events("w"))
        assert cluster.runtimes["b"].count("remove_container") == 0

    run(scenario())


def test_a_restarted_controller_asks_the_daemon_before_finalizing_and_removes_the_container() -> None:
    async def scenario() -> None:
        cluster = Cluster(host_body("a"), host_body("b"))
        await cluster.start()
        cluster.apply(workspace("placed"))
        cluster.apply(workspace("lost"))
        await cluster.reconcile("placed")
        await cluster.reconcile("lost")
        cluster.bodies["lost"].pop("status")  # its status is gone: every host is searched
        assert cluster.containers_of("placed")["a"] + cluster.containers_of("placed")["b"] == 1

        # A new controller whose health checks have not answered yet when the deletions come.
        await cluster.start()
        assert cluster.registry is not None
        for host in cluster.registry.all():
            host.asked.clear()
            host.answered = None
        counts = {name: cluster.containers_of(name) for name in ("placed", "lost")}
        deletions = [asyncio.create_task(cluster.finalize(name)) for name in ("placed", "lost")]
        await asyncio.sleep(0)
        assert not any(task.done() for task in deletions), "nothing is judged before the daemons answer"
        await cluster.check_hosts()
        await asyncio.gather(*deletions)
        for name, before in counts.items():
            was_on = next(h for h, n in before.items() if n)
            container = naming.container_name(f"uid-{name}")
            assert not any(c.name == container for c in cluster.runtimes[was_on].containers.values())

    run(scenario())
