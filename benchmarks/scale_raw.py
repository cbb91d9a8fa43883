"""The raw docker-py baselines of the scale scenarios, run in the same process on the same daemon.

Provisioning reuses `docker_cost.RawSdk` (volumes, create, put_archive, start per Workspace) on plans made
by the controller's own planner from the same spec the benchmark's Workspaces carry, under an instance of
their own so the controller never sees them. Removal is a plain sequential `remove(force=True)` loop.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from benchmarks.docker_cost import RawSdk, bench_settings, objects, raw_plans
from benchmarks.stack_session import RUN_LABEL, StackSession


@dataclass(frozen=True)
class Baseline:
    seconds: float
    calls_per_workspace: float


def raw_provision(session: StackSession, spec: Mapping[str, Any], n: int, concurrency: int) -> Baseline:
    """N Workspaces' containers made by hand, `concurrency` at a time; removed again (not timed)."""
    settings = bench_settings(
        session.registry,
        concurrency,
        WC_RUNTIME_IMAGES=session.runtime_images,
    )
    session.instances.append(settings.instance)
    network = session.docker.networks.create(settings.network)
    plans = raw_plans(
        [dataclasses.replace(o, spec=spec) for o in objects(n, session.registry, "raw")], settings
    )
    raw = RawSdk(concurrency)
    try:
        started = time.perf_counter()
        raw.run_all([raw.provision(plan, network.id) for plan in plans])
        seconds = time.perf_counter() - started
        calls = raw.calls
        raw.run_all([raw.teardown(plan) for plan in plans])
    finally:
        raw.close()
    network.remove()
    return Baseline(seconds, calls / n)


def cheap_containers(session: StackSession, labels: list[dict[str, str]], *, workers: int = 8) -> list[str]:
    """One running container per label set: the test image's busybox sleeping, made `workers` at a time."""
    image = session.no_healthcheck_image
    api = session.docker.api

    def make(labels: dict[str, str]) -> str:
        created = api.create_container(
            image,
            entrypoint=["/bin/sleep", "3600"],
            name=f"ws-bench-{uuid.uuid4().hex[:12]}",
            labels={**labels, RUN_LABEL: session.run_id},
        )
        api.start(created["Id"])
        return str(created["Id"])

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(make, labels))


def raw_remove(session: StackSession, count: int) -> float:
    """Seconds a sequential `remove(force=True)` loop takes over `count` fresh running containers."""
    ids = cheap_containers(session, [{} for _ in range(count)])
    started = time.perf_counter()
    for container_id in ids:
        session.docker.api.remove_container(container_id, force=True)
    return time.perf_counter() - started
