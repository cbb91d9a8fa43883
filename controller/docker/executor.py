"""Runs the synchronous Docker SDK off the event loop.

docker-py blocks, and its thread safety is not documented, so every call runs in a dedicated thread
pool, and each worker thread owns one `docker.DockerClient`. An asyncio semaphore of the same size
keeps callers waiting on the loop rather than queueing unbounded work in the pool; a slot is given
back only when the thread has really finished, even if the awaiting task was cancelled (a running
SDK call cannot be interrupted, only bounded by the client's timeout).

Every exception leaves here classified as a `ContainerRuntimeError`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import docker
import docker.tls
from docker.constants import MINIMUM_DOCKER_API_VERSION

from controller.docker.classify import classify
from controller.port.errors import ContainerRuntimeError

__all__ = ["CallTiming", "ConnectionSettings", "SdkExecutor", "open_client"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ConnectionSettings:
    """How to reach the daemon.

    `base_url` None means the environment decides (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH,
    as the docker CLI does). `api_version` None negotiates with the daemon on connect.
    """

    base_url: str | None = None
    timeout: float = 30.0
    api_version: str | None = None
    tls: TlsFiles | None = None


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a `tcp://` daemon that verifies its clients (`dockerd --tlsverify`)."""

    ca_cert: str
    client_cert: str
    client_key: str


def open_client(settings: ConnectionSettings, timeout: float | None = None) -> Any:
    """A new `docker.DockerClient` (blocking: it may ask the daemon for its API version).

    `ssh://` endpoints go through the system's ssh client (its keys and known_hosts), as the docker CLI
    does; `tcp://` with `tls` verifies the daemon against the CA and presents the client certificate.
    """
    version = settings.api_version or "auto"
    seconds = settings.timeout if timeout is None else timeout
    if not settings.base_url:
        return docker.from_env(timeout=seconds, version=version)
    if settings.tls is None:
        return docker.DockerClient(
            base_url=settings.base_url,
            timeout=seconds,
            version=version,
            use_ssh_client=settings.base_url.startswith("ssh://"),
        )
    tls = docker.tls.TLSConfig(
        client_cert=(settings.tls.client_cert, settings.tls.client_key),
        ca_cert=settings.tls.ca_cert,
        verify=True,
    )
    if version == "auto":
        # Asked here rather than by the client's constructor, which would ask with the environment's CA.
        probe = docker.APIClient(
            base_url=settings.base_url, timeout=seconds, version=MINIMUM_DOCKER_API_VERSION, tls=tls
        )
        try:
            probe.trust_env = False
            version = str(probe.version(api_version=False)["ApiVersion"])
        finally:
            probe.close()
    client = docker.DockerClient(base_url=settings.base_url, timeout=seconds, version=version, tls=tls)
    # The DockerHost's CA verifies its daemon: requests would otherwise let REQUESTS_CA_BUNDLE or
    # CURL_CA_BUNDLE from the environment take its place.
    client.api.trust_env = False
    return client


@dataclass
class CallTiming:
    """When a call was asked for, when a worker began it and when the worker was done (perf_counter).

    The wait for a free slot and the Docker call itself are told apart: a call that waited 9 s behind
    others and took 20 ms is a slow queue, not a slow daemon."""

    asked: float = 0.0
    began: float | None = None
    ended: float | None = None

    @property
    def waited(self) -> float:
        return (self.began if self.began is not None else self.ended or self.asked) - self.asked

    @property
    def ran(self) -> float | None:
        return None if self.began is None or self.ended is None else self.ended - self.began


class SdkExecutor:
    """Runs `fn(api)` calls, where `api` is the calling thread's low-level `docker.APIClient`."""

    def __init__(self, settings: ConnectionSettings, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.settings = settings
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="docker-call"
        )
        self._slots = asyncio.Semaphore(concurrency)
        self._local = threading.local()
        self._clients: list[Any] = []
        self._clients_lock = threading.Lock()
        self._closed = False

    async def call(
        self, fn: Callable[..., T], *args: Any, timing: CallTiming | None = None, settle: bool = False
    ) -> T:
        """Run `fn(api, *args)` in a worker thread; raise a `ContainerRuntimeError` if it fails.
        `timing`, if given, is filled in as the call goes.

        `settle`: the call changes something. A running SDK call cannot be interrupted, so a caller
        cancelled meanwhile (a deletion cancels the pass under way) waits for it to end before the
        cancellation goes on: whoever cancelled then finds what it made (a container created a moment
        after the finalizer looked would stay, with a volume Docker made for it unlabelled)."""
        if self._closed:
            raise ContainerRuntimeError("the Docker adapter is closed")
        loop = asyncio.get_running_loop()
        timing = timing or CallTiming()
        timing.asked = time.perf_counter()
        await self._slots.acquire()
        try:
            future = self._pool.submit(self._run, fn, timing, *args)
        except RuntimeError as exc:  # the pool was shut down meanwhile
            self._slots.release()
            raise ContainerRuntimeError("the Docker adapter is closed") from exc
        future.add_done_callback(lambda _: _release_from_thread(loop, self._slots))
        result = asyncio.wrap_future(future)
        if not settle:
            return await result
        try:
            return await asyncio.shield(result)
        except asyncio.CancelledError:
            if not result.done():
                # Queued and not begun: dropped; begun: waited for (bounded by the client's timeout).
                if future.cancel():
                    raise
                with contextlib.suppress(Exception):
                    await result
            raise

    def _run(self, fn: Callable[..., T], timing: CallTiming, *args: Any) -> T:
        timing.began = time.perf_counter()
        try:
            return fn(self._api(), *args)
        except ContainerRuntimeError:
            raise
        except Exception as exc:
            raise classify(exc) from exc
        finally:
            timing.ended = time.perf_counter()

    def _api(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._open()  # not cached on failure: the next call tries again
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client.api

    def new_client(self, timeout: float | None = None) -> Any:
        """A client owned by the caller (for long-lived streams that must not hold a pool worker)."""
        try:
            return self._open(timeout)
        except Exception as exc:
            raise classify(exc) from exc

    def _open(self, timeout: float | None = None) -> Any:
        client = open_client(self.settings, timeout)
        if self.settings.base_url and self.settings.api_version is None:
            # Negotiated once per daemon, not once per worker thread and stream.
            self.settings = dataclasses.replace(self.settings, api_version=client.api.api_version)
        return client

    def close(self) -> None:
        """Stop accepting calls, drop queued ones and close the worker clients."""
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.close()
            except Exception:  # best effort at shutdown
                log.debug("error closing a docker client", exc_info=True)


def _release_from_thread(loop: asyncio.AbstractEventLoop, slots: asyncio.Semaphore) -> None:
    # If the loop is closed, nobody waits for the slot any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(slots.release)
