"""`DockerAdapter`: the `ContainerRuntime` port implemented for one Docker Engine.

An async facade over the synchronous SDK (see `executor` for how calls run off the event loop). It
takes and returns the port's values (`controller.port.values`) and translates them to and from the
SDK's shapes here (`create_args`, `archive`, `parse`), so nothing above the port sees a Docker
argument. Every failure is a `controller.port.errors` class (`classify`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import quote

import docker.auth
import requests

from controller.core.image_refs import split_reference
from controller.core.naming import AGENT_PORT
from controller.docker.archive import build_tar
from controller.docker.classify import classify, classify_pull_error
from controller.docker.create_args import create_args
from controller.docker.event_stream import CONTAINER_ACTIONS, follow_events
from controller.docker.executor import CallTiming, ConnectionSettings, SdkExecutor, TlsFiles
from controller.docker.parse import (
    ISOLATED_BRIDGE_OPTION,
    ObservedNetwork,
    canonical_network,
    parse_container_inspect,
    parse_container_list_entry,
    parse_image,
    parse_info,
    parse_network,
    parse_network_received,
    parse_volume,
)
from controller.metrics import DOCKER_CALL_TIME, DOCKER_CALLS, DOCKER_SLOT_WAIT
from controller.port.errors import (
    Conflict,
    ContainerRuntimeError,
    ImageNotFound,
    InUse,
    NotFound,
    RegistryUnavailable,
    RemovalInProgress,
)
from controller.port.values import (
    NO_LABELS,
    ContainerEvent,
    ContainerSpec,
    FileTree,
    HostFacts,
    Labels,
    ObservedContainer,
    ObservedImage,
    ObservedVolume,
    RegistryCredentials,
)

__all__ = ["DockerAdapter"]

CHANGING_CALLS = frozenset(
    {
        "create_container",
        "put_files",
        "start_container",
        "stop_container",
        "rename_container",
        "unpause_container",
        "remove_container",
        "disconnect_network",
        "connect_network",
        "ensure_network",
        "remove_network",
        "ensure_volume",
        "remove_volume",
    }
)
"""Calls that change the daemon's objects: a task cancelled while one runs waits for it to end
(`SdkExecutor.call`)."""

log = logging.getLogger(__name__)

T = TypeVar("T")

PULL_SILENCE_LIMIT = 120.0
"""A pull that reports no progress for this long is stuck (the daemon streams progress while it works)."""


class DockerAdapter:
    """The `ContainerRuntime` of one Docker daemon: containers, volumes, networks, images, events.

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
        tls: TlsFiles | None = None,
    ) -> None:
        self._settings = ConnectionSettings(
            base_url=base_url, timeout=timeout, api_version=api_version, tls=tls
        )
        self._executor = SdkExecutor(self._settings, concurrency)
        # Pulls can take minutes: they get their own workers, so they never hold up the calls every
        # reconcile, finalizer and sweep pass needs.
        self._pulls = SdkExecutor(self._settings, max(1, concurrency // 2))
        self._pulling: dict[str, int] = {}  # reference -> pulls of it under way
        self._pull_timeout = pull_timeout
        self._agent_port = agent_port
        self._network_locks: dict[str, asyncio.Lock] = {}
        self._networks: dict[str, str] = {}  # name -> ID, once ensured
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
        """One Docker API call, counted and timed for the metrics (the benchmarks read them too): how
        long it waited for a free slot, and how long the call itself took."""
        timing = CallTiming()
        outcome = "ok"
        try:
            return await executor.call(fn, *args, timing=timing, settle=operation in CHANGING_CALLS)
        except ContainerRuntimeError as exc:
            outcome = type(exc).__name__
            raise
        finally:
            DOCKER_CALLS.labels(operation, outcome).inc()
            DOCKER_SLOT_WAIT.labels(operation).observe(timing.waited)
            ran = timing.ran
            if ran is not None:  # a call dropped before a worker took it (shutdown) did not run
                DOCKER_CALL_TIME.labels(operation).observe(ran)

    # -- daemon ------------------------------------------------------------------------------------

    async def ping(self) -> bool:
        """True when the daemon answers; False (logged) when it does not."""
        try:
            await self._call("ping", lambda api: api.ping())
        except ContainerRuntimeError as exc:
            log.warning("docker daemon does not answer: %s", exc)
            return False
        return True

    async def info(self) -> HostFacts:
        data, version = await self._call("info", lambda api: (api.info(), api.api_version))
        return parse_info(data if isinstance(data, dict) else {}, str(version or ""))

    async def confirm_accepting(self) -> None:
        def on_a_new_connection(_pooled: Any) -> None:
            client = self._executor.new_client()
            try:
                client.api.ping()
            finally:
                client.close()

        await self._call("ping", on_a_new_connection)

    # -- containers --------------------------------------------------------------------------------

    async def list_containers(self, selector: Labels) -> list[ObservedContainer]:
        """All containers (any state) carrying every label of `selector`, in one list call."""
        filters = {"label": _label_filters(selector)}
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

    async def network_received(self, container_id: str) -> int | None:
        """Docker's one-shot stats of the container: the bytes received on its interfaces."""
        try:
            data = await self._call("stats", lambda api: api.stats(container_id, stream=False, one_shot=True))
        except NotFound:
            return None
        return parse_network_received(data if isinstance(data, dict) else {})

    async def create_container(
        self, spec: ContainerSpec, files: FileTree, *, network_id: str | None = None
    ) -> str:
        """Create (not start) a container from `spec` and put `files` into it; return its ID.

        Raises `Conflict` when the name is taken: the caller inspects the holder. When the files
        cannot be written the created container stays, for the next pass to write and start.
        """
        args = create_args(spec, network_id)

        def create(api: Any) -> str:
            host_config = api.create_host_config(**args.host_config)
            networking_config = None
            if args.endpoints:
                networking_config = api.create_networking_config(
                    {net: api.create_endpoint_config(**kw) for net, kw in args.endpoints.items()}
                )
            result = api.create_container(
                name=args.name,
                host_config=host_config,
                networking_config=networking_config,
                platform=args.platform,
                **args.container,
            )
            for warning in result.get("Warnings") or []:
                log.warning("docker create %s: %s", args.name, warning)
            return str(result["Id"])

        try:
            container_id = await self._call("create_container", create)
        except NotFound as exc:
            self._forget_networks(exc)
            raise
        await self.write_files(container_id, files)
        return container_id

    def _forget_networks(self, error: NotFound) -> None:
        """A network this adapter knew is gone (removed by hand): asked of the daemon again next time."""
        if error.resource == "network":
            self._networks.clear()

    async def write_files(self, container_id: str, files: FileTree) -> None:
        """Unpack `files` under `files.root` inside the container (modes as given, owned by root).

        Works on a created, not yet started container, including into a volume mounted there and
        with a read-only root filesystem: config files and secrets land before the agent starts.
        A file marked `if_absent` is left out when the container already has one at its path (the
        config volume keeps what the agent or the platform wrote there).
        """
        wanted = {
            path: file
            for path, file in files.files.items()
            if not (file.if_absent and await self._has_path(container_id, f"{files.root}/{path}"))
        }
        if not wanted:
            return
        tar = build_tar(wanted)
        ok = await self._call("put_files", lambda api: api.put_archive(container_id, files.root, tar))
        if not ok:
            raise ContainerRuntimeError(f"copying files to {container_id}:{files.root} was refused")

    async def _has_path(self, container_id: str, path: str) -> bool:
        """Whether the container's filesystem (its volumes included) has `path`: a HEAD of its archive,
        which answers with the path's stat and no content."""

        def head(api: Any) -> bool:
            url = f"{api.base_url}/v{api.api_version}/containers/{quote(container_id, safe='')}/archive"
            response = api.head(url, params={"path": path}, timeout=self._settings.timeout)
            if response.status_code == 404:
                return False
            _raise_for_status(response)
            return True

        return bool(await self._call("stat_path", head))

    async def start_container(self, container_id: str) -> None:
        """Start it. Raises `NotFound` (resource "network") when the network it was created on is gone
        (older daemons check that at start, newer ones at create)."""
        try:
            await self._call("start_container", lambda api: api.start(container_id))
        except NotFound as exc:
            self._forget_networks(exc)
            raise

    async def stop_container(self, container_id: str, grace: float) -> None:
        """Stop gracefully (SIGTERM), killing after `grace` seconds.

        Raises `NotFound` if there is no such container; stopping a stopped container is a no-op.
        """
        await self._call("stop_container", lambda api: api.stop(container_id, timeout=max(0, round(grace))))

    async def rename_container(self, container_id: str, name: str) -> None:
        await self._call("rename_container", lambda api: api.rename(container_id, name))

    async def disconnect_network(self, container_id: str, network: str) -> None:
        await self._call(
            "disconnect_network", lambda api: api.disconnect_container_from_network(container_id, network)
        )

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

    async def list_volumes(self, selector: Labels) -> list[ObservedVolume]:
        filters = {"label": _label_filters(selector)}
        result = await self._call("list_volumes", lambda api: api.volumes(filters=filters))
        volumes = result.get("Volumes") if isinstance(result, dict) else None
        return [parse_volume(v) for v in _dicts(volumes)]

    async def ensure_volume(self, name: str, labels: Labels) -> ObservedVolume:
        """Create the volume with `labels`, or return the one that already exists, with its own labels.

        Docker leaves an existing volume's labels as they are: whether it may be used, and whose it is,
        is `core.adoption.volume_verdict`'s call on the labels returned.
        """
        data = await self._call(
            "ensure_volume", lambda api: api.create_volume(name=name, driver="local", labels=dict(labels))
        )
        return parse_volume(data if isinstance(data, dict) else {"Name": name})

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

    async def connect_network(self, container_id: str, network_id: str, aliases: tuple[str, ...]) -> None:
        await self._call(
            "connect_network",
            lambda api: api.connect_container_to_network(container_id, network_id, aliases=list(aliases)),
        )

    async def list_networks(self, selector: Labels) -> dict[str, Labels]:
        if not selector:
            raise ValueError("refusing to list networks with an empty selector")
        filters = {"label": [f"{key}={value}" for key, value in selector.items()]}
        data = await self._call("list_networks", lambda api: api.networks(filters=filters))
        return {str(n.get("Name")): dict(n.get("Labels") or {}) for n in _dicts(data) if n.get("Name")}

    async def remove_network(self, name: str) -> None:
        """Remove a network (by name; our names are unique to one Workspace). Missing is success."""
        try:
            await self._call("remove_network", lambda api: api.remove_network(name))
        except NotFound:
            self._networks.pop(name, None)
            return
        except Conflict as exc:
            raise InUse(f"network {name} still has containers: {exc}") from exc
        self._networks.pop(name, None)

    async def ensure_network(self, name: str, *, internal: bool = False, labels: Labels = NO_LABELS) -> str:
        """Make sure a bridge network called exactly `name` exists; return its ID.

        Docker's name filter matches substrings, so the result is filtered by exact name. Concurrent
        creators (other controllers on the daemon) can still produce several networks with one name;
        every caller then keeps the oldest and removes the other, unused ones. Attach containers by
        the returned ID: a name shared by two networks fails at start as "ambiguous".

        Asked of the daemon once per name, then known: a create or start that finds the network gone
        (removed by hand) makes the adapter ask again next time.
        """
        known = self._networks.get(name)
        if known is not None:
            return known
        lock = self._network_locks.setdefault(name, asyncio.Lock())
        async with lock:
            known = self._networks.get(name)
            if known is None:
                known = await self._call("ensure_network", _ensure_network, name, internal, dict(labels))
                self._networks[name] = known
            return known

    # -- images ------------------------------------------------------------------------------------

    async def inspect_image(self, ref: str) -> ObservedImage | None:
        """The local image for `ref`, or None if it has not been pulled."""
        try:
            data = await self._call("inspect_image", lambda api: api.inspect_image(ref))
        except ImageNotFound:
            return None
        return parse_image(data) if isinstance(data, dict) else None

    async def registry_digest(self, ref: str, credentials: RegistryCredentials | None = None) -> str:
        """The digest the registry serves for `ref` (the daemon's distribution inspect: no pull)."""
        return await self._call("registry_digest", _distribution_digest, ref, _auth_config(credentials))

    async def pull_image(
        self, ref: str, platform: str | None = None, credentials: RegistryCredentials | None = None
    ) -> str:
        """Pull `ref` (for `platform`, None = daemon default) and return the local image ID.

        The progress stream is drained fully; its errors are classified (`ImageNotFound`,
        `RegistryAuthFailed`, `RegistryUnavailable`). The whole pull is bounded by `pull_timeout`,
        not the per-request timeout. Pulls run on their own workers, never holding up other calls.
        """
        self._pulling[ref] = self._pulling.get(ref, 0) + 1
        try:
            return await self._call_on(
                self._pulls,
                "pull_image",
                _pull,
                ref,
                platform or "",
                _auth_config(credentials),
                self._settings.timeout,
                self._pull_timeout,
            )
        finally:
            self._pulling[ref] -= 1
            if not self._pulling[ref]:
                del self._pulling[ref]

    async def list_images(self) -> list[ObservedImage]:
        data = await self._call("list_images", lambda api: api.images(all=False))
        return [image for image in (parse_image(d) for d in _dicts(data)) if image is not None]

    async def image_ids_in_use(self) -> set[str]:
        data = await self._call("list_containers", lambda api: api.containers(all=True))
        return {str(c.get("ImageID")) for c in _dicts(data) if c.get("ImageID")}

    def pulling(self) -> frozenset[str]:
        return frozenset(self._pulling)

    async def remove_image(self, image: ObservedImage) -> None:
        # By tag first: an image under several tags cannot be removed by ID without force, and the
        # last tag goes only when no container uses the image (Docker refuses, without force).
        for ref in image.repo_tags or (image.id,):
            try:
                await self._call("remove_image", lambda api, ref=ref: api.remove_image(ref, noprune=False))
            except ImageNotFound:
                continue

    # -- events ------------------------------------------------------------------------------------

    def events(self, selector: Labels) -> AsyncIterator[ContainerEvent]:
        """Follow container events for containers carrying all of `selector`.

        Yields `connected` once subscribed and `reconnected` after any gap (re-list then), then the
        container actions of `events.CONTAINER_ACTIONS`. Reconnects with backoff (0.5 s doubling to
        10 s) when the daemon goes away. Ends when the consumer stops or the adapter closes.
        """
        filters = {"type": ["container"], "event": list(CONTAINER_ACTIONS), "label": _label_filters(selector)}

        def open_source() -> tuple[Iterable[Any], Callable[[], None]]:
            if self._shutdown.is_set():
                raise ContainerRuntimeError("the Docker adapter is closed")
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


def _label_filters(labels: Labels) -> list[str]:
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


def _ensure_network(api: Any, name: str, internal: bool = False, labels: dict[str, str] | None = None) -> str:
    def exact() -> list[ObservedNetwork]:
        return [parse_network(n) for n in _dicts(api.networks(names=[name])) if n.get("Name") == name]

    networks = exact()
    if not networks:
        try:
            # check_duplicate makes the daemon refuse a second network of that name (best effort only).
            # Internal with no address on the host: no route out of it, whatever Docker's iptables say.
            api.create_network(
                name,
                driver="bridge",
                check_duplicate=True,
                internal=internal,
                options={ISOLATED_BRIDGE_OPTION: "true"} if internal else None,
                labels=labels or None,
            )
        except Exception as exc:
            error = classify(exc)
            if not isinstance(error, Conflict):
                raise error from exc
        networks = exact()
    winner = canonical_network(networks, name)
    if winner is None:
        raise ContainerRuntimeError(f"network {name} was created but cannot be found")
    if internal and not winner.isolated:
        raise ContainerRuntimeError(
            f"network {name} exists but is not internal without a host address: not used"
        )
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


def _auth_config(credentials: RegistryCredentials | None) -> dict[str, str] | None:
    """The X-Registry-Auth document for `credentials` (None: an anonymous pull)."""
    if credentials is None:
        return None
    config = {"serveraddress": credentials.serveraddress}
    if credentials.identitytoken:
        config["identitytoken"] = credentials.identitytoken
    else:
        config["username"] = credentials.username
        config["password"] = credentials.password
    return config


def _distribution_digest(api: Any, ref: str, auth_config: dict[str, str] | None) -> str:
    try:
        data = api.inspect_distribution(ref, auth_config=auth_config)
    except docker.errors.APIError as exc:
        raise classify_pull_error(str(exc.explanation or exc)) from exc
    digest = (data.get("Descriptor") or {}).get("digest") if isinstance(data, dict) else None
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise RegistryUnavailable(f"the registry gave no digest for {ref}")
    return digest


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
