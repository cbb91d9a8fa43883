"""The Docker call metrics tell the wait for a free slot from the call itself: a call queued behind a slow
one shows its wait in workspace_controller_docker_call_wait_seconds, not in the call's own duration."""

from __future__ import annotations

import asyncio
import contextlib
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


async def _cancel_while_running(settle: bool) -> tuple[bool, list[str]]:
    """Cancel a caller while its call runs in the worker thread: whether the caller's cancellation ended
    before the call did, and the order of what happened."""
    executor = SdkExecutor(ConnectionSettings(), concurrency=2)
    began, release, finished = threading.Event(), threading.Event(), threading.Event()
    order: list[str] = []

    def changing(api: Any) -> None:
        api.ping()
        began.set()
        release.wait(timeout=30)
        order.append("call ended")
        finished.set()

    try:
        task = asyncio.ensure_future(executor.call(changing, settle=settle))
        task.add_done_callback(lambda _: order.append("caller cancelled"))
        assert await asyncio.to_thread(began.wait, 30)
        task.cancel()
        # The thread cannot end before `release`: whatever finishes within this wait finished without it.
        done, _ = await asyncio.wait({task}, timeout=0.5)
        ended_first = bool(done)
        release.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(finished.wait, 30)
    finally:
        release.set()
        executor.close()
    return ended_first, order


async def test_a_caller_cancelled_during_a_changing_call_waits_for_the_call_to_end(
    docker_engine: Any,
) -> None:
    ended_first, order = await _cancel_while_running(settle=True)
    assert not ended_first
    assert order == ["call ended", "caller cancelled"]


async def test_a_caller_cancelled_during_a_reading_call_goes_at_once(docker_engine: Any) -> None:
    ended_first, order = await _cancel_while_running(settle=False)
    assert ended_first
    assert order == ["caller cancelled", "call ended"]
