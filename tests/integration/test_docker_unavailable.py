"""A daemon that is not there, or does not answer, is `RuntimeUnavailable`: never "the container is gone".

These are real faults: a unix socket path nobody listens on, and one that accepts connections but
never answers (a hung daemon). Neither needs a fake.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.docker.adapter import DockerAdapter
from controller.port.errors import RuntimeUnavailable


@pytest.fixture
def nobody_socket() -> Iterator[str]:
    path = Path(tempfile.gettempdir()) / f"wcit-{uuid.uuid4().hex}.sock"
    assert not path.exists()
    yield f"unix://{path}"
    path.unlink(missing_ok=True)


@pytest.fixture
def mute_socket() -> Iterator[str]:
    """A socket that accepts connections (the kernel's backlog) but never answers."""
    path = Path(tempfile.gettempdir()) / f"wcit-{uuid.uuid4().hex}.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
    yield f"unix://{path}"
    listener.close()
    path.unlink(missing_ok=True)


CALLS: dict[str, Callable[[DockerAdapter], Awaitable[object]]] = {
    "list_containers": lambda d: d.list_containers({"a": "b"}),
    "inspect_container": lambda d: d.inspect_container("ws-anything"),
    "remove_container": lambda d: d.remove_container("ws-anything"),
    "remove_volume": lambda d: d.remove_volume("ws-anything-configs"),
    "inspect_image": lambda d: d.inspect_image("busybox:latest"),
    "ensure_network": lambda d: d.ensure_network("molecule-monorepo-net"),
}


@pytest.mark.parametrize("call", sorted(CALLS))
async def test_every_call_against_a_missing_socket_is_unavailable(nobody_socket: str, call: str) -> None:
    # In particular: inspect is not None ("gone") and remove is not success ("already gone").
    adapter = DockerAdapter(base_url=nobody_socket, timeout=5)
    try:
        with pytest.raises(RuntimeUnavailable) as caught:
            await CALLS[call](adapter)
        assert caught.value.transient
    finally:
        await adapter.close()


async def test_docker_host_from_the_environment_is_honoured(
    nobody_socket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", nobody_socket)
    adapter = DockerAdapter(timeout=5)
    try:
        assert await adapter.ping() is False
        with pytest.raises(RuntimeUnavailable):
            await adapter.inspect_container("ws-anything")
    finally:
        await adapter.close()


async def test_ping_is_true_for_the_real_daemon(adapter: DockerAdapter) -> None:
    assert await adapter.ping() is True


async def test_a_hung_daemon_times_out_as_unavailable_without_blocking_the_loop(mute_socket: str) -> None:
    adapter = DockerAdapter(base_url=mute_socket, timeout=1, api_version="1.41")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    started = time.monotonic()
    try:
        with pytest.raises(RuntimeUnavailable):
            await adapter.list_containers({"a": "b"})
        elapsed = time.monotonic() - started
    finally:
        ticking.cancel()
        await adapter.close()
    assert 0.9 <= elapsed < 10
    # The loop kept running while the call waited in its worker thread.
    assert ticks >= elapsed / 0.05 * 0.5


async def test_calls_beyond_the_concurrency_limit_wait_their_turn(mute_socket: str) -> None:
    adapter = DockerAdapter(base_url=mute_socket, timeout=1, api_version="1.41", concurrency=2)
    started = time.monotonic()
    finished: list[float] = []

    async def one() -> Any:
        try:
            await adapter.inspect_container("ws-anything")
        except RuntimeUnavailable:
            finished.append(time.monotonic() - started)

    try:
        await asyncio.gather(*(one() for _ in range(4)))
    finally:
        await adapter.close()
    finished.sort()
    assert len(finished) == 4
    # Two at a time, each held ~1 s by the hung daemon: the second pair ends about a second later.
    assert finished[2] - finished[0] >= 0.8


@pytest.fixture
def vanishing_socket(docker_client: Any) -> Iterator[Path]:
    """A second path to the real daemon's socket, which the test removes: as a daemon that is shutting
    down does, which closes its socket first and still serves the connections made before."""
    docker_host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    assert docker_host.startswith("unix://"), "the project's stack runs Docker on a unix socket"
    path = Path(tempfile.gettempdir()) / f"wcit-{uuid.uuid4().hex}.sock"
    path.symlink_to(docker_host.removeprefix("unix://"))
    yield path
    path.unlink(missing_ok=True)


async def test_a_daemon_that_closed_its_socket_is_unavailable_though_open_connections_still_answer(
    vanishing_socket: Path,
) -> None:
    adapter = DockerAdapter(base_url=f"unix://{vanishing_socket}", timeout=5, concurrency=1)
    try:
        await adapter.info()  # the one worker's connection is open now, and kept
        await adapter.confirm_accepting()
        await asyncio.to_thread(vanishing_socket.unlink)
        assert (await adapter.info()).cpus > 0  # the kept connection still reaches the daemon
        with pytest.raises(RuntimeUnavailable):
            await adapter.confirm_accepting()
    finally:
        await adapter.close()
