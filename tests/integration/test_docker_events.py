"""The container event stream, against the real engine (and through a relay that can cut it)."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.docker.adapter import DockerAdapter
from controller.port.values import CONNECTED, DISCONNECTED, RECONNECTED, ContainerEvent
from tests.integration.stack import NO_FILES, Registries, Scope, container_spec
from tests.integration.waiting import EventLog, eventually
from tests.support.relay import DaemonRelay, daemon_socket_path


async def start_agent(
    adapter: DockerAdapter, registries: Registries, scope: Scope, suffix: str, **labels: str
) -> str:
    spec = container_spec(
        scope.name(suffix), registries.ref(registries.plain, "langgraph"), labels={**scope.labels, **labels}
    )
    container_id = await adapter.create_container(spec, NO_FILES)
    await adapter.start_container(container_id)
    return container_id


def is_(kind: str, container_id: str = "") -> Any:
    def match(event: ContainerEvent) -> bool:
        return event.kind == kind and (not container_id or event.container_id == container_id)

    return match


async def docker_kill(container_id: str) -> None:
    """`docker kill`, by the docker CLI: a change made by someone other than the adapter."""
    process = await asyncio.create_subprocess_exec(
        "docker", "kill", container_id, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()


def follower_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "docker-events")


async def test_docker_kill_of_a_labelled_container_yields_die_with_its_exit_code_within_2s(
    adapter: DockerAdapter, registries: Registries, scope: Scope
) -> None:
    log = EventLog(adapter.events(scope.labels))
    try:
        await log.wait_for(is_(CONNECTED), within=10, what="subscribed")
        unlabelled = container_spec(
            scope.name("outsider"), registries.ref(registries.plain, "langgraph"), labels={}
        )
        outsider = await adapter.create_container(unlabelled, NO_FILES)
        await adapter.start_container(outsider)
        target = await start_agent(adapter, registries, scope, "target")
        await log.wait_for(is_("start", target), within=10, what="start of the target")

        killed_at = time.monotonic()
        await docker_kill(outsider)
        await docker_kill(target)
        die = await log.wait_for(is_("die", target), within=10, what="die of the target")
        latency = time.monotonic() - killed_at

        assert latency < 2.0
        assert die.exit_code == 137
        assert die.name == scope.name("target")
        assert die.labels == scope.labels | {"org.opencontainers.image.version": "v1"}
        assert die.time is not None
        await log.wait_for(is_("kill", target), within=1, what="kill of the target")
        # The unlabelled container was killed first; the engine delivers in order, so it would be here.
        assert all(e.container_id != outsider for e in log.events)
    finally:
        await log.close()


async def test_health_and_destroy_arrive_as_events(
    adapter: DockerAdapter, registries: Registries, scope: Scope
) -> None:
    log = EventLog(adapter.events(scope.labels))
    try:
        await log.wait_for(is_(CONNECTED), within=10, what="subscribed")
        target = await start_agent(adapter, registries, scope, "healthy")
        health = await log.wait_for(is_("health_status", target), within=30, what="health verdict")
        assert health.health == "healthy"
        await adapter.remove_container(target)
        await log.wait_for(is_("destroy", target), within=10, what="destroy")
        assert not any(e.kind.startswith("exec") for e in log.events)
    finally:
        await log.close()


async def test_events_need_a_label_selector(adapter: DockerAdapter) -> None:
    with pytest.raises(ValueError, match="label selector"):
        adapter.events({})


async def test_cancelling_the_consumer_ends_the_follower_thread(adapter: DockerAdapter, scope: Scope) -> None:
    before = follower_threads()
    connected = asyncio.Event()

    async def consume() -> None:
        async for event in adapter.events(scope.labels):
            if event.kind == CONNECTED:
                connected.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(connected.wait(), 10)
    assert follower_threads() == before + 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async def thread_gone() -> bool:
        return follower_threads() == before

    await eventually(thread_gone, within=5, what="follower thread ended")


async def test_closing_the_adapter_ends_the_stream(scope: Scope) -> None:
    adapter = DockerAdapter()
    log = EventLog(adapter.events(scope.labels))
    await log.wait_for(is_(CONNECTED), within=10, what="subscribed")
    await adapter.close()

    async def ended() -> bool:
        return not log.running

    await eventually(ended, within=5, what="event stream ended after close")
    await log.close()


@pytest.fixture
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonRelay]:
    upstream = daemon_socket_path()
    if upstream is None:
        pytest.skip("DOCKER_HOST is not a unix socket; the relay forwards unix sockets only")
    # Unix socket paths are limited to ~107 bytes: keep it short.
    directory = Path(tmp_path_factory.mktemp("relay", numbered=True))
    instance = DaemonRelay(directory / "d.sock", upstream)
    yield instance
    instance.close()


async def test_stream_reconnects_with_backoff_and_says_so_when_the_daemon_comes_back(
    relay: DaemonRelay, adapter: DockerAdapter, registries: Registries, scope: Scope
) -> None:
    through_relay = DockerAdapter(base_url=relay.url, timeout=5)
    log = EventLog(through_relay.events(scope.labels))
    try:
        await log.wait_for(is_(CONNECTED), within=10, what="subscribed through the relay")

        relay.go_away()
        await log.wait_for(is_(DISCONNECTED), within=10, what="told the stream ended")

        async def retried_three_times() -> bool:
            return len(relay.refused_at) >= 3

        await eventually(retried_three_times, within=15, what="three reconnect attempts")
        first, second, third = relay.refused_at[:3]
        # Backoff, not a hot loop: 0.5 s after the stream ended, then 1 s, then 2 s.
        assert second - first >= 0.8
        assert third - second >= 1.6
        assert not any(e.kind == RECONNECTED for e in log.events)
        assert [e.kind for e in log.events].count(DISCONNECTED) == 1, "once per outage, not per attempt"

        relay.come_back()
        await log.wait_for(is_(RECONNECTED), within=15, what="reconnected")

        target = await start_agent(adapter, registries, scope, "after")
        await docker_kill(target)
        die = await log.wait_for(is_("die", target), within=5, what="die after reconnecting")
        assert die.exit_code == 137
    finally:
        await log.close()
        await through_relay.close()
