"""The Docker call metrics tell the wait for a free slot from the call itself: a call queued behind a slow
one shows its wait in workspace_controller_docker_call_wait_seconds, not in the call's own duration."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from controller.docker.adapter import DockerAdapter
from controller.docker.executor import CallTiming, ConnectionSettings, SdkExecutor
from controller.metrics import DOCKER_CALL_TIME, DOCKER_SLOT_WAIT


async def test_a_call_queued_behind_another_waits_for_its_slot_and_is_timed_without_the_wait(
    docker_engine: Any,
) -> None:
    executor = SdkExecutor(ConnectionSettings(), concurrency=1)
    release = threading.Event()

    def held(api: Any) -> None:
        api.ping()
        release.wait(timeout=30)

    try:
        first = asyncio.ensure_future(executor.call(held))
        await asyncio.sleep(0)  # the first takes the only slot
        second_timing = CallTiming()
        second = asyncio.ensure_future(executor.call(lambda api: api.ping(), timing=second_timing))
        held_from = time.perf_counter()
        await asyncio.sleep(0.3)
        release.set()
        held_for = time.perf_counter() - held_from
        await asyncio.gather(first, second)
    finally:
        executor.close()

    assert second_timing.waited >= held_for * 0.9
    ran = second_timing.ran
    assert ran is not None
    assert ran < second_timing.waited


async def test_the_adapter_records_both_for_every_call(adapter: DockerAdapter) -> None:
    waits, calls = _count(DOCKER_SLOT_WAIT, "ping"), _count(DOCKER_CALL_TIME, "ping")
    await asyncio.gather(*(adapter.ping() for _ in range(3)))
    assert _count(DOCKER_SLOT_WAIT, "ping") == waits + 3
    assert _count(DOCKER_CALL_TIME, "ping") == calls + 3


def _count(histogram: Any, operation: str) -> float:
    return sum(  # type: ignore[no-any-return]
        sample.value
        for metric in histogram.collect()
        for sample in metric.samples
        if sample.name.endswith("_count") and sample.labels["operation"] == operation
    )
