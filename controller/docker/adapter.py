"""`DockerAdapter`: the controller's only door to Docker.

An async facade over the synchronous SDK (see `executor` for how calls run off the event loop).
It takes plain values (names, label maps, SDK keyword arguments, tar bytes) and returns the frozen
values of `observed` and `events`, so the reconcile layer maps between those and its own types.
Every failure is a `controller.docker.errors.DockerError` subclass.

Idempotence is built in where the engine's answer allows it: removing what is already gone (or
being removed) succeeds, creating a network or volume that exists is a no-op. What needs a decision
is reported instead: a name conflict on create (`Conflict`: adopt the existing container), a
volume still in use (`InUse`: retry later), a volume that exists without our labels (returned).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import docker.auth
import requests

from controller.docker.errors import (
    Conflict,
    DockerError,
    ImageNotFound,
    NotFound,
    RegistryAuthFailed,
    RegistryUnavailable,
    RemovalInProgress,
    classify,
    classify_pull_error,
)
from controller.docker.events import CONTAINER_ACTIONS, DockerEvent, follow_events
from controller.docker.executor import ConnectionSettings, SdkExecutor
from controller.docker.image_refs import digest_for, split_reference
from controller.docker.observed import (
    AGENT_PORT,
    ObservedContainer,
    ObservedNetwork,
    ObservedVolume,
    canonical_network,
    parse_container_inspect,
    parse_container_list_entry,
    parse_network,
    parse_volume,
)
from controller.docker.registry_auth import InvalidRegistryAuth, pull_auth_config
from controller.metrics import DOCKER_CALL_TIME, DOCKER_CALLS

__all__ = ["DockerAdapter"]

log = logging.getLogger(__name__)

T = TypeVar("T")

PULL_SILENCE_LIMIT = 120.0
"""A pull that reports no progress for this long is stuck (the daemon streams progress while it works)."""

_RESERVED_CREATE_KWARGS = frozenset(("name", "host_config", "networking_config", "platform"))


class DockerAdapter:
    """Observe and change containers, volumes, networks and images on one Docker daemon.

    `base_url` None takes the daemon from the environment (DOCKER_HOST & co., else the default
    socket). `timeout` bounds each API request; pulls have their own, longer `pull_timeout`.
    At most `concurrency` calls run at once, each in its own worker thread.
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        pull_timeout: float = 900.0,
        concurrency: int = 8,
        api_version: str | None = None,
        agent_port: int = AGENT_PORT,
    ) -> None:
        self._settings = ConnectionSettings(base_url=base_url, timeout=timeout, api_version=api_version)
        self._executor = SdkExecutor(self._settings, concurrency)
        # Pulls can take minutes: they get their own workers, so they never hold up the calls every
        # reconcile, finalizer and sweep pass needs.
        self._pulls = SdkExecutor(self._settings, max(1, concurrency // 2))
        self._pull_timeout = pull_timeout
        self._agent_port = agent_port
        self._network_locks: dict[str, asyncio.Lock] = {}
        self._shutdown = threading.Event()
        self._streams_lock = threading.Lock()
        self._stream_closers: set[Callable[[], None]] = set()

    async def __aenter__(self) -> DockerAdapter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _call(self, operation: str, fn: Callable[..., T], *args: Any) -> T:
        return await self._call_on(self._executor, operation, fn, *args)

    async def _call_on(self, executor: SdkExecutor, operation: str, fn: Callable[..., T], *args: Any) -> T:
        """One Docker API call, counted and timed for the metrics (the benchmarks read them too)."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await executor.call(fn, *args)
        except DockerError as exc:
            outcome = type(exc).__name__
            raise
        finally:
            DOCKER_CALLS.labels(operation, outcome).inc()
            DOCKER_CALL_TIME.labels(operation).observe(time.perf_counter() - started)

    # -- daemon ------------------------------------------------------------------------------------

    async def ping(self) -> bool:
        """True when the daemon answers; False (logged) when it does not."""
        try:
            await self._call("ping", lambda api: api.ping())
        except DockerError as exc:
            log.warning("docker daemon does not answer: %s", exc)
            return False
        return True

    # -- containers --------------------------------------------------------------------------------

    async def list_containers(self, labels: Mapping[str, str]) -> list[ObservedContainer]:
        """All containers (any state) carrying every one of `labels`, in one list call."""
        filters = {"label": _label_filters(labels)}
        entries = await self._call("list_containers", lambda api: api.containers(all=True, filters=filters))
        port = self._agent_port
        return [parse_container_list_entry(e, port) for e in _dicts(entries)]

    async def inspect_container(self, name_or_id: str) -> ObservedContainer | None:
        """Everything Docker knows about one container; None when there is no such container."""
        try:
            data = await self._call("inspect_container", lambda api: api.inspect_container(name_or_id))
        except NotFound as exc:
            if exc.resource == "container":
                return None
            raise
        return parse_container_inspect(data if isinstance(data, dict) else {}, self._agent_port)

    async def create_container(
        self,
        name: str,
        create_kwargs: Mapping[str, Any],
        host_config_kwargs: Mapping[str, Any],
        networking: Mapping[str, Mapping[str, Any]] | None = None,
        platform: str = "",
    ) -> str:
        """Create (not start) a container; return its ID.

        `create_kwargs` are `APIClient.create_container` arguments (image, environment, labels,
        ports, ...), `host_config_kwargs` those of `create_host_config`, and `networking` maps a
        network name or ID to `create_endpoint_config` arguments (API 1.41 takes one network at
        create). `platform` ("os/arch", "" for the daemon's default) selects the image variant.
        Raises `Conflict` when the name is taken: the caller inspects and adopts that container.
        """
        clash = _RESERVED_CREATE_KWARGS & set(create_kwargs)
        if clash:
            raise ValueError(f"create_kwargs must not set {sorted(clash)}; they are separate arguments")

        def create(api: Any) -> str:
            host_config = api.create_host_config(**dict(host_config_kwargs))
            networking_config = None
            if networking:
                networking_config = api.create_networking_config(
                    {net: api.create_endpoint_config(**dict(kw)) for net, kw in networking.items()}
                )
            result = api.create_container(
                name=name,
                host_config=host_config,
                networking_config=networking_config,
                platform=platform or None,
                **dict(create_kwargs),
            )
            for warning in result.get("Warnings") or []:
                log.warning("docker create %s: %s", name, warning)
            return str(result["Id"])

        return await self._call("create_container", create)

    async def put_files(self, container_id: str, path: str, tar_bytes: bytes) -> None:
        """Unpack a tar archive at `path` inside the container (modes and owners as in the archive).

        Works on a created, not yet started container, including into a volume mounted there and
        with a read-only root filesystem: config files and secrets land before the agent starts.
        """
        ok = await self._call("put_files", lambda api: api.put_archive(container_id, path, tar_bytes))
        if not ok:
            raise DockerError(f"copying files to {container_id}:{path} was refused")

    async def start_container(self, container_id: str) -> None:
        await self._call("start_container", lambda api: api.start(container_id))

    async def stop_container(self, container_id: str, timeout: float) -> None:  # noqa: ASYNC109
        """Stop gracefully (SIGTERM), killing after `timeout` seconds of grace.

        `timeout` is Docker's grace period, not a limit on this call. Raises `NotFound` if there is
        no such container; stopping a stopped container is a no-op.
        """
        await self._call("stop_container", lambda api: api.stop(container_id, timeout=max(0, round(timeout))))

    async def unpause_container(self, container_id: str) -> None:
        await self._call("unpause_container", lambda api: api.unpause(container_id))

    async def remove_container(self, container_id: str) -> None:
        """Force-remove (a running container too, so a restart policy cannot respawn it).

        Already gone, or already being removed by someone else, counts as success. Anonymous
        volumes go with the container; named volumes never do.
        """
        try:
            await self._call(
                "remove_container", lambda api: api.remove_container(container_id, v=True, force=True)
            )
        except NotFound as exc:
            if exc.resource != "container":
                raise
        except RemovalInProgress:
            log.info("docker: removal of %s already in progress", container_id)

    # -- volumes -----------------------------------------------------------------------------------

    async def list_volumes(self, labels: Mapping[str, str]) -> list[ObservedVolume]:
        filters = {"label": _label_filters(labels)}
        result = await self._call("list_volumes", lambda api: api.volumes(filters=filters))
        volumes = result.get("Volumes") if isinstance(result, dict) else None
        return [parse_volume(v) for v in _dicts(volumes)]

    async def ensure_volume(self, name: str, labels: Mapping[str, str]) -> ObservedVolume:
        """Create the volume with `labels`, or return the one that already exists.

        Docker leaves an existing volume's labels as they are, so a volume created by someone else
        (or implicitly by a bind) comes back without ours: check `result.carries(labels)` before
        treating it as ours to delete.
        """
        data = await self._call(
            "ensure_volume", lambda api: api.create_volume(name=name, driver="local", labels=dict(labels))
        )
        volume = parse_volume(data if isinstance(data, dict) else {"Name": name})
        if not volume.carries(labels):
            log.warning(
                "docker volume %s exists without our labels %s; using it but not treating it as ours",
                name,
                dict(labels),
            )
        return volume

    async def remove_volume(self, name: str) -> None:
        """Remove a volume. A missing volume is success; one still mounted raises `InUse`."""

        def remove(api: Any) -> None:
            # The SDK drops `force` from this request (docker 7.1), so build the URL ourselves.
            url = f"{api.base_url}/v{api.api_version}/volumes/{quote(name, safe='')}"
            response = api.delete(url, params={"force": "1"}, timeout=self._settings.timeout)
            _raise_for_status(response)

        try:
            await self._call("remove_volume", remove)
        except NotFound as exc:
            if exc.resource != "volume":
                raise

    # -- networks ----------------------------------------------------------------------------------

    async def ensure_network(self, name: str) -> str:
        """Make sure a bridge network called exactly `name` exists; return its ID.

        Docker's name filter matches substrings, so the result is filtered by exact name. Concurrent
        creators (other controllers on the daemon) can still produce several networks with one name;
        every caller then keeps the oldest and removes the other, unused ones. Attach containers by
        the returned ID: a name shared by two networks fails at start as "ambiguous".
        """
        lock = self._network_locks.setdefault(name, asyncio.Lock())
        async with lock:
            return await self._call("ensure_network", _ensure_network, name)

    # -- images ------------------------------------------------------------------------------------

    async def image_present(self, ref: str) -> str | None:
        """The local image ID for `ref`, or None if it has not been pulled."""
        data = await self._inspect_image(ref)
        image_id = data.get("Id") if data else None
        return image_id if isinstance(image_id, str) and image_id else None

    async def image_digest(self, ref: str) -> str | None:
        """The registry digest (`sha256:...`) the local image has for `ref`'s repository, if known."""
        data = await self._inspect_image(ref)
        return digest_for(ref, data.get("RepoDigests") or []) if data else None

    async def pull_image(self, ref: str, platform: str = "", auth: Mapping[str, str] | None = None) -> str:
        """Pull `ref` (for `platform`, "" = daemon default) and return the local image ID.

        `auth` is the registry's entry, `{"username", "password"}` or `{"auth": base64}`; None pulls
        anonymously. The progress stream is drained fully; its errors are classified
        (`ImageNotFound`, `RegistryAuthFailed`, `RegistryUnavailable`). The whole pull is bounded
        by `pull_timeout`, not the per-request timeout.
        """
        try:
            auth_config = pull_auth_config(auth)
        except InvalidRegistryAuth as exc:
            raise RegistryAuthFailed(str(exc)) from exc
        return await self._call_on(
            self._pulls,
            "pull_image",
            _pull,
            ref,
            platform,
            auth_config,
            self._settings.timeout,
            self._pull_timeout,
        )

    async def _inspect_image(self, ref: str) -> dict[str, Any] | None:
        try:
            data = await self._call("inspect_image", lambda api: api.inspect_image(ref))
        except ImageNotFound:
            return None
        return data if isinstance(data, dict) else None

    # -- events ------------------------------------------------------------------------------------

    def events(self, labels: Mapping[str, str]) -> AsyncIterator[DockerEvent]:
        """Follow container events for containers carrying all `labels`.

        Yields `connected` once subscribed and `reconnected` after any gap (re-list then), then the
        container actions of `events.CONTAINER_ACTIONS`. Reconnects with backoff (0.5 s doubling to
        10 s) when the daemon goes away. Ends when the consumer stops or the adapter closes.
        """
        filters = {"type": ["container"], "event": list(CONTAINER_ACTIONS), "label": _label_filters(labels)}

        def open_source() -> tuple[Iterable[Any], Callable[[], None]]:
            if self._shutdown.is_set():
                raise DockerError("the Docker adapter is closed")
            client = self._executor.new_client()
            try:
                stream = client.api.events(filters=filters, decode=True)
            except BaseException:
                client.close()
                raise
            closed = threading.Event()

            def close() -> None:
                if closed.is_set():
                    return
                closed.set()
                with self._streams_lock:
                    self._stream_closers.discard(close)
                try:
                    stream.close()
                finally:
                    client.close()

            with self._streams_lock:
                self._stream_closers.add(close)
            return stream, close

        return follow_events(open_source, shutdown=self._shutdown)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def close(self) -> None:
        """End event streams, drop queued calls and close the clients. Idempotent."""
        self._shutdown.set()
        with self._streams_lock:
            closers = list(self._stream_closers)
        for close in closers:
            try:
                close()
            except Exception:  # the stream is being torn down anyway
                log.debug("error closing a docker event stream", exc_info=True)
        self._executor.close()
        self._pulls.close()


def _label_filters(labels: Mapping[str, str]) -> list[str]:
    # An empty selector would match every container on the daemon, including other people's.
    if not labels:
        raise ValueError("a label selector is required: the controller only looks at what it labelled")
    return [f"{key}={value}" for key, value in labels.items()]


def _dicts(items: object) -> list[dict[str, Any]]:
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _raise_for_status(response: Any) -> None:
    try:
        response.raise_for_status()
    except requests.exceptions.HTTPError as exc:
        raise classify(exc) from exc


def _ensure_network(api: Any, name: str) -> str:
    def exact() -> list[ObservedNetwork]:
        return [parse_network(n) for n in _dicts(api.networks(names=[name])) if n.get("Name") == name]

    networks = exact()
    if not networks:
        try:
            # check_duplicate makes the daemon refuse a second network of that name (best effort only).
            api.create_network(name, driver="bridge", check_duplicate=True)
        except Exception as exc:
            error = classify(exc)
            if not isinstance(error, Conflict):
                raise error from exc
        networks = exact()
    winner = canonical_network(networks, name)
    if winner is None:
        raise DockerError(f"network {name} was created but cannot be found")
    for duplicate in networks:
        if duplicate.id == winner.id:
            continue
        # Every caller removes the same losers, so racing creators converge on one network. One
        # that already has containers is refused by the engine and stays: we never use it anyway.
        try:
            api.remove_network(duplicate.id)
            log.info(
                "docker: removed duplicate network %s (%s); keeping %s",
                name,
                duplicate.id[:12],
                winner.id[:12],
            )
        except Exception as exc:
            log.warning("docker: duplicate network %s (%s) stays: %s", name, duplicate.id[:12], classify(exc))
    return winner.id


def _pull(
    api: Any,
    ref: str,
    platform: str,
    auth_config: dict[str, str] | None,
    timeout: float,
    pull_timeout: float,
) -> str:
    # The SDK's pull has no timeout at all (it can hang forever on a stalled registry), so issue
    # the request ourselves: bounded silence between progress messages, and a bounded total.
    repository, tag = split_reference(ref)
    params = {"fromImage": repository, "tag": tag}
    if platform:
        params["platform"] = platform
    headers = {"X-Registry-Auth": docker.auth.encode_header(auth_config)} if auth_config else {}
    url = f"{api.base_url}/v{api.api_version}/images/create"
    silence = min(PULL_SILENCE_LIMIT, pull_timeout)
    deadline = time.monotonic() + pull_timeout
    try:
        response = api.post(url, params=params, headers=headers, stream=True, timeout=(timeout, silence))
    except requests.exceptions.ReadTimeout as exc:
        raise RegistryUnavailable(f"pull of {ref}: no answer within {silence:.0f}s") from exc
    try:
        _raise_for_status(response)
        for line in response.iter_lines():
            if time.monotonic() > deadline:
                raise RegistryUnavailable(f"pull of {ref} did not finish within {pull_timeout:.0f}s")
            _raise_stream_error(line)
    except requests.exceptions.ConnectionError as exc:
        if "timed out" in str(exc).lower():
            raise RegistryUnavailable(f"pull of {ref}: no progress for {silence:.0f}s") from exc
        raise classify(exc) from exc
    finally:
        response.close()
    image = api.inspect_image(ref)
    return str(image["Id"])


def _raise_stream_error(line: bytes) -> None:
    if not line:
        return
    try:
        message = json.loads(line)
    except ValueError:
        return
    if isinstance(message, dict) and message.get("error"):
        raise classify_pull_error(str(message["error"]))
