"""Placement at scale: 3 Docker hosts x N Workspaces applied at once, against one host with 3N, in one run.

Four timings, each from nothing to every container running and then every Workspace Ready, with
N = BENCH_HOST_WORKSPACES (default 100) and BENCH_CONCURRENCY Docker calls at once per host (default 4).
The agent image is the test agent without its health check: hundreds of checks every two seconds would
measure the daemons' load on a small machine, not the controller.

- controller, 1 host:  3N Workspaces on the machine's daemon;
- controller, 3 hosts: 3N Workspaces over the machine's daemon and two of the benchmark's own
  (hack/stack/dockerd.sh), every one placed by the controller's scheduler (none pinned);
- raw SDK, 1 host:     3N equivalent containers created and started by docker-py on the machine's daemon;
- raw SDK, 3 hosts:    N on each of the three daemons, in parallel.

The controller side is its own code: the Reconciler, the HostRegistry with its scheduler, one
DockerAdapter per host, each host a DockerHost object. Kubernetes is not part of what is measured: the
reconciler talks to `tests.support.fake_kube.FakeKube`, which serves the DockerHosts and keeps the
Workspaces' statuses in memory. Each Workspace has its own loop, as in the controller: a pass, then
another after the requeue the pass asks for, until its status says Ready (the Docker event stream, which
would wake a loop as soon as a container changes, is not followed). The raw baseline does the same by
hand: create and start, then inspect every `PROGRESS_REQUEUE` seconds until it runs (and its health
check, if the image had one, passed). So both sides look again on the same interval.
Every Workspace is tier 1 and every host offers more room than the whole run takes, so capacity never
decides where a Workspace goes: the spread is the scheduler's own. The image is pulled into every
daemon and the network created there before anything is timed.

How to read it:
- controller / raw (per host count): what the controller costs over doing the same by hand; lower is
  better, 1.0 is no overhead.
- 3 hosts / 1 host (for each side): how much adding hosts helps; below 1.0 the hosts work in parallel,
  1.0 is no gain. The controller's figure should follow the raw one: when it is much higher, the
  controller serialises work that the daemons could do side by side.
- placement: Workspaces per host in the 3-host run, and max/min (1.00 is an even spread).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import docker

from benchmarks.docker_cost import RawSdk, bench_settings, docker_calls, objects, raw_plans, workspace_spec
from controller.core.decide import PROGRESS_REQUEUE
from controller.core.labels import INSTANCE_LABEL
from controller.core.plan import ContainerPlan
from controller.docker.adapter import DockerAdapter
from controller.kube.event_recorder import EventRecorder
from controller.kube.workspace_object import WorkspaceObject
from controller.operator import docker_connector
from controller.reconcile.hosts import HostRegistry
from controller.reconcile.policies import PolicyStore
from controller.reconcile.reconciler import Reconciler
from controller.reconcile.triggers import Triggers
from controller.settings import ControllerSettings
from tests.support.fake_kube import FakeKube
from tests.support.stack import OwnDaemon, Registry, ensure_docker, push_test_images, start_registry

T = TypeVar("T")

TIER = 1
CAPACITY = {"cpus": 4096, "memoryMiB": 1 << 30}
"""Each DockerHost's spec.capacity: room for far more than any run places on one host."""
OWN_BRIDGES = ("10.222.241.1/24", "10.222.242.1/24")
MACHINE = "machine"
DEADLINE = 1800.0
"""Seconds a run may take before the benchmark gives up on it."""


@dataclass(frozen=True)
class Daemon:
    """A Docker daemon the benchmark drives, under its DockerHost name."""

    name: str
    url: str


@dataclass(frozen=True)
class Timing:
    running_s: float
    ready_s: float
    calls: float


@dataclass(frozen=True)
class Row:
    hosts: int
    controller: Timing
    raw: Timing


def quiet_agent_ref(registry: Registry) -> str:
    return f"{registry.prefix}/bench-agent:quiet"


def quiet_agent(registry: Registry) -> str:
    """The test agent without its health check, pushed as <prefix>/bench-agent:quiet: hundreds of checks
    every two seconds would be the daemons' load on a small machine, not the controller's."""
    ref = quiet_agent_ref(registry)
    client = docker.from_env()
    try:
        dockerfile = f"FROM {registry.image('langgraph')}\nHEALTHCHECK NONE\n"
        client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=ref, rm=True)
        for line in client.images.push(ref, stream=True, decode=True):
            if "error" in line:
                raise RuntimeError(f"push of {ref} failed: {line['error']}")
    finally:
        client.close()
    return ref


def tier1_objects(n: int, registry: Registry, namespace: str) -> list[WorkspaceObject]:
    spec = {**workspace_spec(registry), "tier": TIER, "image": quiet_agent_ref(registry)}
    return [dataclasses.replace(obj, spec=spec) for obj in objects(n, registry, namespace)]


def docker_host(daemon: Daemon) -> dict[str, Any]:
    return {
        "metadata": {"name": daemon.name, "generation": 1},
        "spec": {"endpoint": daemon.url, "capacity": CAPACITY},
    }


def condition(status: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    for entry in status.get("conditions") or []:
        if entry.get("type") == type_:
            return dict(entry)
    return {}


def spread(counts: Counter[str], names: list[str]) -> str:
    per_host = ", ".join(f"{name} {counts.get(name, 0)}" for name in names)
    low, high = min(counts.get(n, 0) for n in names), max(counts.get(n, 0) for n in names)
    ratio = f"{high / low:.2f}" if low else "inf"
    unplaced = sum(v for k, v in counts.items() if k not in names)
    tail = f"; {unplaced} on no host" if unplaced else ""
    return f"{per_host} (max/min {ratio}){tail}"


# -- the controller ------------------------------------------------------------------------------------


async def until_ready(
    reconciler: Reconciler, kube: FakeKube, obj: WorkspaceObject, started: float
) -> tuple[float, float]:
    """One Workspace's loop: passes until its status says Ready. (seconds to running, seconds to Ready)"""
    key = (obj.ref.namespace, obj.ref.name)
    running: float | None = None
    while True:
        result = await reconciler.reconcile(dataclasses.replace(obj, status=kube.statuses.get(key, {})))
        status = kube.statuses.get(key, {})
        now = time.perf_counter() - started
        if result.result == "error":
            # A failed pass is retried with backoff by the controller: the timing would not be the
            # controller's cost at scale but its retry policy.
            message = condition(status, "Synced").get("message", "")
            raise RuntimeError(f"{obj.ref}: a reconcile failed: {message}")
        stalled = condition(status, "Stalled")
        if stalled.get("status") == "True":
            raise RuntimeError(f"{obj.ref} is Stalled ({stalled.get('reason')}): {stalled.get('message')}")
        if running is None and (status.get("container") or {}).get("state") == "running":
            running = now
        if condition(status, "Ready").get("status") == "True":
            return (now if running is None else running), now
        if now > DEADLINE:
            raise TimeoutError(f"{obj.ref} not Ready after {DEADLINE:.0f}s: {condition(status, 'Ready')}")
        await asyncio.sleep(result.requeue_after or PROGRESS_REQUEUE)


async def controller_run(
    daemons: list[Daemon], total: int, settings: ControllerSettings, registry: Registry
) -> tuple[Timing, Counter[str]]:
    """`total` Workspaces applied at once over `daemons`; the timing and Workspaces per host."""
    kube = FakeKube(docker_hosts={d.name: docker_host(d) for d in daemons})

    hosts = HostRegistry(
        settings=settings,
        kube=kube,
        triggers=Triggers(),
        connect=docker_connector(settings),
        background=False,
    )
    try:
        await hosts.load()
        for host in hosts.all():
            await hosts.check(host)
            if not host.ready:
                raise RuntimeError(f"DockerHost {host.name} is not Ready: {host.problem}")
        reconciler = Reconciler(
            hosts=hosts,
            kube=kube,
            settings=settings,
            events=EventRecorder(kube),
            policies=PolicyStore(kube, default_image_prefix=settings.registry_prefix, wake_all=lambda: None),
        )
        objs = tier1_objects(total, registry, "bench")
        calls = docker_calls()
        started = time.perf_counter()
        marks = await asyncio.gather(*(until_ready(reconciler, kube, o, started) for o in objs))
        calls = docker_calls() - calls
        placed = Counter(
            str(kube.statuses[(o.ref.namespace, o.ref.name)].get("host") or "(none)") for o in objs
        )
    finally:
        await hosts.close()
    return Timing(max(m[0] for m in marks), max(m[1] for m in marks), calls), placed


# -- the raw SDK baseline ------------------------------------------------------------------------------


class DaemonSdk(RawSdk):
    """RawSdk on one given daemon, each client used by one worker thread at a time, driven from asyncio."""

    def __init__(self, url: str, concurrency: int) -> None:
        # Not RawSdk.__init__: its clients are for the environment's daemon.
        self.pool = ThreadPoolExecutor(concurrency)
        self.clients = [docker.DockerClient(base_url=url, timeout=60) for _ in range(concurrency)]
        self.calls = 0
        self._next = 0
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for client in self.clients:
            self._idle.put(client.api)

    def _on_idle_client(self, job: Callable[[Any], T]) -> T:
        api = self._idle.get()
        try:
            return job(api)
        finally:
            self._idle.put(api)

    async def run(self, job: Callable[[Any], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._on_idle_client, job)

    async def until_healthy(
        self, plan: ContainerPlan, network_id: str, started: float
    ) -> tuple[float, float]:
        """Create and start, then inspect until the health check passed. (seconds to running, to healthy)"""
        calls = await self.run(self.provision(plan, network_id))
        self.calls += calls  # not `+= await`: that would add to the count read before the await
        running = time.perf_counter() - started
        while True:
            state = await self.run(lambda api: api.inspect_container(plan.name)["State"])
            self.calls += 1
            now = time.perf_counter() - started
            health = (state.get("Health") or {}).get("Status")
            if state.get("Status") == "running" and health in (None, "healthy"):
                return running, now
            if health == "unhealthy" or state.get("Status") in ("exited", "dead"):
                raise RuntimeError(f"container {plan.name} is {state.get('Status')} ({health})")
            if now > DEADLINE:
                raise TimeoutError(f"container {plan.name} not healthy after {DEADLINE:.0f}s")
            await asyncio.sleep(PROGRESS_REQUEUE)


async def raw_run(
    daemons: list[Daemon],
    per_daemon: int,
    concurrency: int,
    settings: ControllerSettings,
    registry: Registry,
    networks: Mapping[str, str],
) -> Timing:
    """`per_daemon` containers on each of `daemons`, all at once, `concurrency` calls at once per daemon."""
    sdks = {d.name: DaemonSdk(d.url, concurrency) for d in daemons}
    try:
        plans = {
            d.name: raw_plans(tier1_objects(per_daemon, registry, "bench-raw"), settings) for d in daemons
        }
        started = time.perf_counter()
        marks = await asyncio.gather(
            *(
                sdks[d.name].until_healthy(plan, networks[d.name], started)
                for d in daemons
                for plan in plans[d.name]
            )
        )
        calls = sum(sdk.calls for sdk in sdks.values())
    finally:
        for sdk in sdks.values():
            sdk.close()
    return Timing(max(m[0] for m in marks), max(m[1] for m in marks), calls)


# -- set-up and clean-up -------------------------------------------------------------------------------


async def prepare(daemon: Daemon, settings: ControllerSettings, registry: Registry) -> str:
    """The image pulled and the network there; the network's ID."""
    client = docker.DockerClient(base_url=daemon.url, timeout=300)
    try:
        client.images.pull(quiet_agent_ref(registry))
    finally:
        client.close()
    adapter = DockerAdapter(base_url=daemon.url)
    try:
        return await adapter.ensure_network(settings.network)
    finally:
        await adapter.close()


def clear(daemon: Daemon, instance: str, network_id: str | None = None) -> None:
    """Remove the run's containers and volumes from the daemon (and its network, when given)."""
    selector = {"label": f"{INSTANCE_LABEL}={instance}"}
    client = docker.DockerClient(base_url=daemon.url, timeout=120)
    try:
        containers = client.containers.list(all=True, filters=selector)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda c: c.remove(force=True, v=True), containers))
        for volume in client.volumes.list(filters=selector):
            volume.remove(force=True)
        if network_id is not None:
            client.networks.get(network_id).remove()
    finally:
        client.close()


async def run(
    per_host: int, concurrency: int, own: list[OwnDaemon], registry: Registry
) -> tuple[list[Row], Counter[str], list[str]]:
    settings = bench_settings(registry, concurrency, WC_LOCAL_HOST="")
    instance = settings.instance
    machine = Daemon(MACHINE, os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock")
    every = [machine, *(Daemon(f"dockerd-{i}", d.url) for i, d in enumerate(own, 1))]
    total = per_host * len(every)
    networks: dict[str, str] = {}
    rows: list[Row] = []
    placed: Counter[str] = Counter()
    try:
        for daemon in every:
            networks[daemon.name] = await prepare(daemon, settings, registry)
        for daemons in ([machine], every):
            controller, placed = await controller_run(daemons, total, settings, registry)
            for daemon in daemons:
                clear(daemon, instance)
            raw = await raw_run(daemons, total // len(daemons), concurrency, settings, registry, networks)
            for daemon in daemons:
                clear(daemon, instance)
            rows.append(Row(len(daemons), controller, raw))
    finally:
        for daemon in every:
            try:
                clear(daemon, instance, networks.get(daemon.name))
            except Exception as exc:  # the daemons of the benchmark's own are removed next regardless
                print(
                    f"{daemon.name}: the run's containers, volumes or network not removed: {exc}",
                    file=sys.stderr,
                )
    return rows, placed, [d.name for d in every]


def remove_all(own: list[OwnDaemon]) -> None:
    """Every daemon of the benchmark's own removed (its containers, networks and bridge) with its directory,
    even when removing another one failed."""
    failed = []
    for daemon in own:
        try:
            daemon.remove()
        except subprocess.CalledProcessError as exc:
            failed.append(f"{daemon.url}: {exc}")
        shutil.rmtree(daemon.directory, ignore_errors=True)
    if failed:
        raise RuntimeError("Docker daemons not removed: " + "; ".join(failed))


def running_s(timing: Timing) -> float:
    return timing.running_s


def ready_s(timing: Timing) -> float:
    return timing.ready_s


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def report(per_host: int, concurrency: int, rows: list[Row], placed: Counter[str], names: list[str]) -> None:
    one, three = rows
    total = per_host * len(names)
    print(
        f"\n{len(names)} hosts x {per_host} workspaces against 1 host x {total}, tier {TIER}, "
        f"{concurrency} concurrent Docker calls per host\n"
    )
    print(f"{'run':<17} {'controller':>11} {'raw SDK':>9} {'ratio':>6} {'ctl calls':>10} {'raw calls':>10}")
    for row in rows:
        where = f"{row.hosts} host{'s' if row.hosts > 1 else ''}"
        for what, c, r in (
            ("running", row.controller.running_s, row.raw.running_s),
            ("Ready", row.controller.ready_s, row.raw.ready_s),
        ):
            calls = f"{row.controller.calls:>10.0f} {row.raw.calls:>10.0f}" if what == "Ready" else ""
            print(f"{where + ', ' + what:<17} {c:>10.3f}s {r:>8.3f}s {ratio(c, r):>6.2f} {calls}".rstrip())
    print(f"\n{'3 hosts / 1 host':<17} {'controller':>11} {'raw SDK':>9}")
    for what, seconds in (("running", running_s), ("Ready", ready_s)):
        c = ratio(seconds(three.controller), seconds(one.controller))
        r = ratio(seconds(three.raw), seconds(one.raw))
        print(f"{what:<17} {c:>11.2f} {r:>9.2f}")
    print(f"\nplacement over {len(names)} hosts: {spread(placed, names)}")
    print("\nratio = controller time / raw SDK time (1.0: no overhead)")
    print(
        "3 hosts / 1 host = the same workspaces on three daemons / on one (below 1.0: they work in parallel)"
    )
    print("running = every container started; Ready = every Workspace reported Ready (the agent image has")
    print("  no health check here: hundreds of checks every 2 s would measure the daemons' load)")
    print("calls = Docker API operations until Ready")


def main() -> int:
    per_host = int(os.environ.get("BENCH_HOST_WORKSPACES", "100"))
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "4"))
    ensure_docker()
    own: list[OwnDaemon] = []
    with tempfile.TemporaryDirectory(prefix="wc-bench-") as state:
        registry = start_registry("placement", Path(state))
        try:
            push_test_images(registry)
            quiet_agent(registry)
            for cidr in OWN_BRIDGES:
                # Short: the socket's path must fit a sockaddr_un.
                daemon = OwnDaemon(Path(tempfile.mkdtemp(prefix="wcb", dir="/tmp")), bridge_cidr=cidr)
                own.append(daemon)
                daemon.start()
            rows, placed, names = asyncio.run(run(per_host, concurrency, own, registry))
        finally:
            remove_all(own)
            registry.stop()
    report(per_host, concurrency, rows, placed, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
