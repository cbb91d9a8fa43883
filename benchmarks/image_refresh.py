"""What spec.imageUpdate costs the registry: 200 Workspaces on 9 images, per check interval.

The controller's way is its own code (`RegistryDigests` over the `DockerAdapter`, as every Workspace's
pass asks it): one distribution inspect per image per interval, shared by all Workspaces of that image.
The naive way, measured in the same run on the same daemon and registry, is raw docker-py asking once
per Workspace (`APIClient.inspect_distribution`), with the same concurrency.

Printed: registry requests and wall time for one interval's checks, and for a second round inside the
interval (the controller's answers are still fresh: no request), with ratios controller / naive.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker

from controller.docker.adapter import DockerAdapter
from controller.reconcile.registry_digests import RegistryDigests
from controller.settings import KNOWN_RUNTIMES
from tests.support.stack import Registry, ensure_docker, push_test_images, start_registry

INTERVAL = 300.0


def refs_of(registry: Registry, workspaces: int, images: int) -> list[str]:
    runtimes = KNOWN_RUNTIMES[:images]
    return [registry.image(runtimes[n % len(runtimes)]) for n in range(workspaces)]


async def controller_round(digests: RegistryDigests, adapter: DockerAdapter, refs: list[str]) -> float:
    started = time.perf_counter()
    answers = await asyncio.gather(*(digests.latest(adapter, ref, None, INTERVAL) for ref in refs))
    elapsed = time.perf_counter() - started
    failed = [a.error for a in answers if a.digest is None]
    if failed:
        raise SystemExit(f"registry checks failed: {failed[:3]}")
    return elapsed


def naive_round(refs: list[str], concurrency: int) -> float:
    client = docker.APIClient(version="auto")
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            digests = list(
                pool.map(lambda ref: client.inspect_distribution(ref)["Descriptor"]["digest"], refs)
            )
        elapsed = time.perf_counter() - started
    finally:
        client.close()
    assert all(d.startswith("sha256:") for d in digests)
    return elapsed


async def measure(refs: list[str], concurrency: int) -> tuple[float, int, float, int]:
    adapter = DockerAdapter(concurrency=concurrency)
    try:
        digests = RegistryDigests()
        first = await controller_round(digests, adapter, refs)
        after_first = digests.requests
        again = await controller_round(digests, adapter, refs)
        return first, after_first, again, digests.requests - after_first
    finally:
        await adapter.close()


def main() -> int:
    workspaces = int(os.environ.get("BENCH_REFRESH_WORKSPACES", "200"))
    images = int(os.environ.get("BENCH_REFRESH_IMAGES", "9"))
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "4"))
    ensure_docker()
    with tempfile.TemporaryDirectory(prefix="wc-bench-") as state:
        registry = start_registry("bench-refresh", Path(state))
        try:
            push_test_images(registry)
            refs = refs_of(registry, workspaces, images)
            naive = naive_round(refs, concurrency)
            first, first_requests, again, again_requests = asyncio.run(measure(refs, concurrency))
        finally:
            registry.stop()
    distinct = len(set(refs))
    print(f"\nimage refresh: {workspaces} Workspaces on {distinct} images, {concurrency} concurrent calls\n")
    print(
        f"{'round':<22} {'controller':>11} {'naive':>9} {'ratio':>6} {'ctl requests':>13} {'naive req':>10}"
    )
    print(
        f"{'one interval':<22} {first:>10.3f}s {naive:>8.3f}s {first / naive:>6.2f} "
        f"{first_requests:>13d} {workspaces:>10d}"
    )
    print(
        f"{'again, same interval':<22} {again:>10.3f}s {naive:>8.3f}s {again / naive:>6.2f} "
        f"{again_requests:>13d} {workspaces:>10d}"
    )
    print(
        f"\nregistry requests per interval: {first_requests} against {workspaces} "
        f"({first_requests / workspaces:.3f} of the naive count); ratio = controller time / naive time"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
