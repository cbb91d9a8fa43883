"""What the controller costs in Docker time and calls, against raw Docker SDK calls doing the same job.

Three scenarios, each run by the controller's own code (the Reconciler and its DockerAdapter) and by a
raw docker-py baseline in the same run, on the same daemon, with the same images and concurrency:

- provision: N workspaces from nothing to a started container with /configs written;
- resync:    N healthy workspaces looked at again (the periodic safety net);
- teardown:  N workspaces deleted with their volumes.

Kubernetes is not part of what is measured: the reconciler talks to `tests.support.fake_kube.FakeKube`, the
in-memory stand-in for its KubeApi seam (Secret/ConfigMap reads, status patches and Events kept in
memory), so the numbers are the Docker side alone.
The ratio column is controller time / raw time (lower is better; 1.0 means no overhead).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from controller import metrics
from controller.api.workspace import WorkspaceSpec
from controller.core.identity import WorkspaceRef
from controller.core.plan import ContainerPlan, ResolvedInputs, plan_workspace
from controller.docker.adapter import DockerAdapter
from controller.docker.archive import build_tar
from controller.docker.create_args import create_args
from controller.kube.event_recorder import EventRecorder
from controller.kube.workspace_object import WorkspaceObject
from controller.reconcile.observer import Observer
from controller.reconcile.policies import PolicyStore
from controller.reconcile.reconciler import Reconciler
from controller.settings import ControllerSettings
from tests.support.fake_kube import FakeKube
from tests.support.hosts import one_host, the_host
from tests.support.stack import Registry, ensure_docker, push_test_images, start_registry

CONFIG_YAML = "name: bench\nruntime: langgraph\n"


def docker_calls() -> float:
    return sum(
        s.value for m in metrics.DOCKER_CALLS.collect() for s in m.samples if s.name.endswith("_total")
    )


@dataclass
class Row:
    scenario: str
    controller_s: float
    raw_s: float
    controller_calls: float
    raw_calls: int

    @property
    def ratio(self) -> float:
        return self.controller_s / self.raw_s if self.raw_s else float("nan")


def workspace_spec(registry: Registry) -> dict[str, Any]:
    return {
        "runtime": "langgraph",
        "image": registry.image("langgraph"),
        "imagePullPolicy": "IfNotPresent",
        "tier": 2,
        "env": [{"name": "BENCH", "value": "1"}],
        "config": {"files": [{"path": "config.yaml", "content": CONFIG_YAML}]},
    }


def objects(n: int, registry: Registry, namespace: str) -> list[WorkspaceObject]:
    spec = workspace_spec(registry)
    return [
        WorkspaceObject(
            ref=WorkspaceRef(uid=str(uuid.uuid4()), namespace=namespace, name=f"bench-{i}"),
            generation=1,
            spec=spec,
            status={},
            annotations={},
        )
        for i in range(n)
    ]


def raw_plans(objs: list[WorkspaceObject], settings: ControllerSettings) -> list[ContainerPlan]:
    plans = []
    for obj in objs:
        spec = WorkspaceSpec.model_validate(obj.spec)
        plan = plan_workspace(obj.ref, spec, ResolvedInputs(auth_token="raw-token"), settings)
        assert isinstance(plan, ContainerPlan)
        plans.append(plan)
    return plans


class RawSdk:
    """The baseline: docker-py's low-level client doing each job by hand, one client per thread."""

    def __init__(self, concurrency: int) -> None:
        self.pool = ThreadPoolExecutor(concurrency)
        self.clients = [docker.from_env(timeout=60) for _ in range(concurrency)]
        self.calls = 0
        self._next = 0

    def _api(self) -> Any:
        self._next = (self._next + 1) % len(self.clients)
        return self.clients[self._next].api

    def run_all(self, jobs: list[Callable[[Any], int]]) -> None:
        futures = [self.pool.submit(job, self._api()) for job in jobs]
        self.calls += sum(f.result() for f in futures)

    def provision(self, plan: ContainerPlan, network_id: str) -> Callable[[Any], int]:
        return lambda api: self.provision_on(api, plan, network_id)

    @staticmethod
    def provision_on(api: Any, plan: ContainerPlan, network_id: str) -> int:
        """Volumes, create, the config files, start: the calls it took."""
        for volume in plan.volumes:
            api.create_volume(name=volume.name, labels=dict(volume.labels))
        args = create_args(plan.container, network_id)
        host_config = api.create_host_config(**args.host_config)
        endpoints = {net: api.create_endpoint_config(**kw) for net, kw in args.endpoints.items()}
        created = api.create_container(
            name=args.name,
            platform=args.platform,
            host_config=host_config,
            networking_config=api.create_networking_config(endpoints) if endpoints else None,
            **args.container,
        )
        api.put_archive(created["Id"], plan.files.root, build_tar(plan.files.files))
        api.start(created["Id"])
        return len(plan.volumes) + 3

    @staticmethod
    def inspect(name: str) -> Callable[[Any], int]:
        def job(api: Any) -> int:
            api.inspect_container(name)
            return 1

        return job

    @staticmethod
    def teardown(plan: ContainerPlan) -> Callable[[Any], int]:
        def job(api: Any) -> int:
            api.remove_container(plan.name, v=True, force=True)
            for volume in plan.volumes:
                api.remove_volume(volume.name, force=True)
            return 1 + len(plan.volumes)

        return job

    def close(self) -> None:
        self.pool.shutdown()
        for client in self.clients:
            client.close()


async def timed(fn: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    calls = docker_calls()
    started = time.perf_counter()
    await fn()
    return time.perf_counter() - started, docker_calls() - calls


def timed_sync(fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


async def one_round(
    reconciler: Reconciler,
    observer: Observer,
    raw: RawSdk,
    objs: list[WorkspaceObject],
    plans: list[ContainerPlan],
    network_id: str,
) -> list[Row]:
    rows = []

    async def provision() -> None:
        results = await asyncio.gather(*(reconciler.reconcile(o) for o in objs))
        # A failed pass would make the scenario cheap for the wrong reason.
        failed = [r for r in results if r.result == "error"]
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(objs)} reconciles failed while provisioning")

    async def resync() -> None:
        await observer.refresh()
        await asyncio.gather(*(reconciler.reconcile(o) for o in objs))

    async def teardown() -> None:
        await asyncio.gather(*(reconciler.finalize(o) for o in objs))

    c_time, c_calls = await timed(provision)
    r_calls0 = raw.calls
    r_time = timed_sync(lambda: raw.run_all([raw.provision(p, network_id) for p in plans]))
    rows.append(Row("provision", c_time, r_time, c_calls, raw.calls - r_calls0))

    await resync()  # the first look after creation inspects; measure the steady state
    c_time, c_calls = await timed(resync)
    r_calls0 = raw.calls
    r_time = timed_sync(lambda: raw.run_all([raw.inspect(p.name) for p in plans]))
    rows.append(Row("resync", c_time, r_time, c_calls, raw.calls - r_calls0))

    c_time, c_calls = await timed(teardown)
    r_calls0 = raw.calls
    r_time = timed_sync(lambda: raw.run_all([raw.teardown(p) for p in plans]))
    rows.append(Row("teardown", c_time, r_time, c_calls, raw.calls - r_calls0))
    return rows


def bench_settings(registry: Registry, concurrency: int, **env: str) -> ControllerSettings:
    """Settings of a run: its own instance label and network, images from the benchmark's registry."""
    instance = f"bench-{uuid.uuid4().hex[:6]}"
    return ControllerSettings.from_env(
        {
            "MOLECULE_IMAGE_REGISTRY": registry.prefix,
            "WC_INSTANCE": instance,
            "WC_DOCKER_CONCURRENCY": str(concurrency),
            "MOLECULE_NETWORK": f"{instance}-net",
            **env,
        }
    )


async def run(n: int, repeats: int, concurrency: int, registry: Registry) -> list[Row]:
    settings = bench_settings(registry, concurrency)
    instance = settings.instance
    adapter = DockerAdapter(concurrency=concurrency)
    kube = FakeKube()
    hosts = await one_host(adapter, settings, kube)
    observer = the_host(hosts).observer
    reconciler = Reconciler(
        hosts=hosts,
        kube=kube,
        settings=settings,
        events=EventRecorder(kube),
        policies=PolicyStore(kube, default_image_prefix=settings.registry_prefix, wake_all=lambda: None),
    )
    raw = RawSdk(concurrency)
    rows: dict[str, list[Row]] = {"provision": [], "resync": [], "teardown": []}
    network_id = await adapter.ensure_network(settings.network)
    docker.from_env().images.pull(registry.image("langgraph"))
    try:
        for _ in range(repeats):
            objs = objects(n, registry, "bench")
            plans = raw_plans(objects(n, registry, "bench-raw"), settings)
            for row in await one_round(reconciler, observer, raw, objs, plans, network_id):
                rows[row.scenario].append(row)
    finally:
        raw.close()
        client = docker.from_env()
        for container in client.containers.list(all=True, filters={"name": "ws-"}):
            if container.labels.get("molecule.ai/controller-instance") == instance:
                container.remove(force=True)
        for volume in client.volumes.list(filters={"label": f"molecule.ai/controller-instance={instance}"}):
            volume.remove(force=True)
        client.networks.get(network_id).remove()
        client.close()
        await adapter.close()
    return [
        Row(
            name,
            statistics.median(r.controller_s for r in rs),
            statistics.median(r.raw_s for r in rs),
            statistics.median(r.controller_calls for r in rs),
            int(statistics.median(r.raw_calls for r in rs)),
        )
        for name, rs in rows.items()
    ]


def main() -> int:
    n = int(os.environ.get("BENCH_WORKSPACES", "20"))
    repeats = int(os.environ.get("BENCH_REPEATS", "3"))
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "4"))
    ensure_docker()
    with tempfile.TemporaryDirectory(prefix="wc-bench-") as state:
        registry = start_registry("bench", Path(state))
        try:
            push_test_images(registry)
            rows = asyncio.run(run(n, repeats, concurrency, registry))
        finally:
            registry.stop()
    print(f"\n{n} workspaces, median of {repeats} runs, {concurrency} concurrent Docker calls\n")
    print(
        f"{'scenario':<10} {'controller':>11} {'raw SDK':>9} {'ratio':>6} {'ctl calls':>10} {'raw calls':>10}"
    )
    for row in rows:
        print(
            f"{row.scenario:<10} {row.controller_s:>10.3f}s {row.raw_s:>8.3f}s {row.ratio:>6.2f} "
            f"{row.controller_calls:>10.0f} {row.raw_calls:>10d}"
        )
    print("\nratio = controller time / raw SDK time; calls = Docker API operations in the scenario")
    return 0


if __name__ == "__main__":
    sys.exit(main())
