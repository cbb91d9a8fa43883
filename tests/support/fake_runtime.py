"""FakeRuntime: an in-memory fake of the controller's own `ContainerRuntime` port, for unit tests.

It is a fake of our seam, not of Docker: it keeps containers, volumes, networks and images in dicts,
follows the port's contract (idempotent removes, `Conflict` on a taken name, `InUse` for a mounted
volume, `ImageNotFound` for an image no registry has) and records every call, so a unit test can say what
the reconciler asked for. Integration and end-to-end tests use the real Docker Engine instead.

Faults are injected per operation (`fail(...)`), and a pull can be held open (`hold_pulls`) to see what
the controller reports while it waits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from controller.port.errors import (
    Conflict,
    ContainerRuntimeError,
    ImageNotFound,
    InUse,
    NotFound,
)
from controller.port.values import (
    CONNECTED,
    DISCONNECTED,
    NO_LABELS,
    RECONNECTED,
    ContainerEvent,
    ContainerSpec,
    ContainerState,
    FileTree,
    Health,
    HostFacts,
    Labels,
    ObservedContainer,
    ObservedImage,
    ObservedVolume,
    RegistryCredentials,
)


@dataclass
class FakeContainer:
    id: str
    spec: ContainerSpec
    state: ContainerState = "created"
    health: Health | None = None
    exit_code: int | None = None
    restart_count: int = 0
    oom_killed: bool = False
    host_port: int | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    name: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    image: str = ""
    networks_left: list[str] = field(default_factory=list)
    networks_joined: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    image_id: str = ""
    """The image it was created from (a tag that moves later does not change it), as Docker keeps it."""
    started_at: datetime | None = None
    received: int = 0
    """Bytes received on its network, as a test sets them."""

    def observed(self, image_id: str, *, detail: bool) -> ObservedContainer:
        return ObservedContainer(
            id=self.id,
            name=self.name,
            image=self.image,
            image_id=image_id,
            labels=dict(self.labels),
            state=self.state,
            health=self.health if self.state == "running" else None,
            exit_code=self.exit_code if self.state in ("exited", "restarting", "dead") else None,
            host_port=self.host_port if self.state in ("running", "paused", "restarting") else None,
            created=1.0,
            detail=detail,
            started_at=self.started_at if detail else None,
            restart_count=self.restart_count if detail else None,
            oom_killed=self.oom_killed if detail else None,
            uptime=self._uptime() if not detail and self.state == "running" else None,
        )

    def _uptime(self) -> tuple[float, float] | None:
        """What a list says of its run so far: "Up N seconds", as the interval that wording allows."""
        if self.started_at is None:
            return None
        seconds = int((datetime.now(UTC) - self.started_at).total_seconds())
        return (float(seconds), seconds + 1.0)


class FakeRuntime:
    """The port in memory. `registry` holds what a pull can fetch: image reference -> image ID."""

    def __init__(self, *, registry: Mapping[str, str] | None = None) -> None:
        self.registry: dict[str, str] = dict(registry or {})
        self.images: dict[str, ObservedImage] = {}
        self.by_id: dict[str, ObservedImage] = {}
        self.containers: dict[str, FakeContainer] = {}
        self.volumes: dict[str, ObservedVolume] = {}
        self.volume_files: dict[str, dict[str, bytes]] = {}
        """What named volumes hold (path relative to the volume), as the containers mounting them see it."""
        self.networks: dict[str, str] = {}
        self.network_labels: dict[str, dict[str, str]] = {}
        self.internal_networks: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self.pull_credentials: list[RegistryCredentials | None] = []
        self.hold_pulls: asyncio.Event | None = None
        self.pulls_in_flight: list[str] = []
        self.healthcheck = False
        self.facts = HostFacts(server_version="fake", cpus=4, memory_bytes=8 << 30)
        self._failures: dict[str, list[ContainerRuntimeError]] = {}
        self._always: dict[str, ContainerRuntimeError] = {}
        self._ids = itertools.count(1)
        self._ports = itertools.count(40000)
        self._events: asyncio.Queue[ContainerEvent | None] | None = None
        self.closed = False

    # -- test controls ------------------------------------------------------------------------------

    def fail(self, operation: str, error: ContainerRuntimeError, *, always: bool = False) -> None:
        """Make the next call of `operation` (every call, with `always`) raise `error`."""
        if always:
            self._always[operation] = error
        else:
            self._failures.setdefault(operation, []).append(error)

    def heal(self, operation: str) -> None:
        self._always.pop(operation, None)
        self._failures.pop(operation, None)

    def count(self, operation: str) -> int:
        return sum(1 for op, _ in self.calls if op == operation)

    def by_name(self, name: str) -> FakeContainer | None:
        return next((c for c in self.containers.values() if c.name == name), None)

    def add_foreign(self, name: str, labels: Mapping[str, str] | None = None) -> FakeContainer:
        """A container someone else made (not through the port), e.g. holding a Workspace's name."""
        spec = ContainerSpec(
            name=name, image="elsewhere/img:1", platform=None, env=(), labels=dict(labels or {}),
            exposed_port="80/tcp", port_bindings=(), restart_policy="no", network=None, aliases=(),
            binds=(), read_only_rootfs=False, tmpfs={}, memory=0, nano_cpus=0, privileged=False,
            pid_mode=None, network_mode="bridge", cap_drop=(), cap_add=(), security_opt=(), pids_limit=0,
        )  # fmt: skip
        container = self._new(spec)
        container.state = "running"
        return container

    def emit(self, event: ContainerEvent) -> None:
        """Deliver `event` to the open event stream (dropped when none is open). Container events reach
        it when their labels match its selector; stream events (DISCONNECTED, RECONNECTED) always do,
        as with the port."""
        if self._events is not None:
            self._events.put_nowait(event)

    # -- the port -----------------------------------------------------------------------------------

    async def ping(self) -> bool:
        try:
            self._record("ping", "")
        except ContainerRuntimeError:
            return False
        return True

    async def info(self) -> HostFacts:
        self._record("info", "")
        return self.facts

    async def confirm_accepting(self) -> None:
        self._record("confirm_accepting", "")

    async def list_containers(self, selector: Labels) -> list[ObservedContainer]:
        self._record("list_containers", ",".join(f"{k}={v}" for k, v in selector.items()))
        _require(selector)
        return [
            c.observed(self._running_image(c), detail=False)
            for c in self.containers.values()
            if _matches(c.labels, selector)
        ]

    async def inspect_container(self, name_or_id: str) -> ObservedContainer | None:
        self._record("inspect_container", name_or_id)
        container = self.containers.get(name_or_id) or self.by_name(name_or_id)
        return container.observed(self._running_image(container), detail=True) if container else None

    async def network_received(self, container_id: str) -> int | None:
        self._record("network_received", container_id)
        container = self.containers.get(container_id)
        return container.received if container is not None and container.state == "running" else None

    async def create_container(
        self, spec: ContainerSpec, files: FileTree, *, network_id: str | None = None
    ) -> str:
        self._record("create_container", spec.name)
        if self.by_name(spec.name) is not None:
            raise Conflict(f'Conflict. The container name "/{spec.name}" is already in use', 409)
        if spec.image not in self.images:
            raise ImageNotFound(f"No such image: {spec.image}", 404)
        if spec.network is not None and network_id not in self.networks.values():
            raise NotFound(f"network {network_id} not found", 404, resource="network")
        container = self._new(spec)
        await self.write_files(container.id, files)
        return container.id

    async def write_files(self, container_id: str, files: FileTree) -> None:
        self._record("write_files", container_id)
        container = self._get(container_id)
        for path, file in files.files.items():
            if not (file.if_absent and f"{files.root}/{path}" in container.files):
                self.save(container, f"{files.root}/{path}", file.content)

    def save(self, container: FakeContainer, path: str, content: bytes) -> None:
        """A file written in the container (by the port, or by the agent): into the volume mounted there."""
        container.files[path] = content
        for volume, mount in _volume_mounts(container.spec):
            if path.startswith(mount + "/"):
                self.volume_files.setdefault(volume, {})[path[len(mount) + 1 :]] = content

    async def disconnect_network(self, container_id: str, network: str) -> None:
        self._record("disconnect_network", container_id)
        container = self._get(container_id)
        container.networks_left.append(network)

    async def rename_container(self, container_id: str, name: str) -> None:
        self._record("rename_container", container_id)
        container = self._get(container_id)
        holder = self.by_name(name)
        if holder is not None and holder.id != container_id:
            raise Conflict(f'Conflict. The container name "/{name}" is already in use', 409)
        container.name = name

    async def start_container(self, container_id: str) -> None:
        self._record("start_container", container_id)
        container = self._get(container_id)
        if container.state != "running":
            container.state = "running"
            container.health = "starting" if self.healthcheck else None
            container.restart_count = 0
            container.started_at = datetime.now(UTC)
            if container.host_port is None and container.spec.port_bindings:
                container.host_port = next(self._ports)

    async def stop_container(self, container_id: str, grace: float) -> None:
        self._record("stop_container", container_id)
        container = self._get(container_id)
        if container.state in ("running", "paused", "restarting"):
            container.state, container.exit_code = "exited", 0

    async def unpause_container(self, container_id: str) -> None:
        self._record("unpause_container", container_id)
        container = self._get(container_id)
        if container.state == "paused":
            container.state = "running"

    async def remove_container(self, container_id: str) -> None:
        self._record("remove_container", container_id)
        self.containers.pop(container_id, None)

    async def ensure_network(self, name: str, *, internal: bool = False, labels: Labels = NO_LABELS) -> str:
        self._record("ensure_network", name)
        if internal:
            self.internal_networks.add(name)
        if labels:
            self.network_labels.setdefault(name, dict(labels))
        return self.networks.setdefault(name, f"net-{next(self._ids)}")

    async def connect_network(self, container_id: str, network_id: str, aliases: tuple[str, ...]) -> None:
        self._record("connect_network", container_id)
        self._get(container_id).networks_joined.append((network_id, aliases))

    async def list_networks(self, selector: Labels) -> dict[str, Labels]:
        self._record("list_networks", ",".join(f"{k}={v}" for k, v in selector.items()))
        _require(selector)
        return {n: dict(found) for n, found in self.network_labels.items() if _matches(found, selector)}

    async def remove_network(self, name: str) -> None:
        self._record("remove_network", name)
        network_id = self.networks.get(name)
        if network_id is not None and any(
            c.spec.network == name or any(joined == network_id for joined, _ in c.networks_joined)
            for c in self.containers.values()
        ):
            raise InUse(f"network {name} has active endpoints", 403)
        self.networks.pop(name, None)
        self.network_labels.pop(name, None)
        self.internal_networks.discard(name)

    async def ensure_volume(self, name: str, labels: Labels) -> ObservedVolume:
        self._record("ensure_volume", name)
        return self.volumes.setdefault(name, ObservedVolume(name, dict(labels), "local", 1.0))

    async def list_volumes(self, selector: Labels) -> list[ObservedVolume]:
        self._record("list_volumes", ",".join(f"{k}={v}" for k, v in selector.items()))
        _require(selector)
        return [v for v in self.volumes.values() if _matches(v.labels, selector)]

    async def remove_volume(self, name: str) -> None:
        self._record("remove_volume", name)
        if any(name in bind.split(":", 1)[0] for c in self.containers.values() for bind in c.spec.binds):
            raise InUse(f"remove {name}: volume is in use", 409)
        self.volumes.pop(name, None)
        self.volume_files.pop(name, None)

    async def inspect_image(self, ref: str) -> ObservedImage | None:
        """By reference, or by ID (an image whose tag has moved on is still there under its ID)."""
        self._record("inspect_image", ref)
        return self.images.get(ref) or self.by_id.get(ref)

    async def pull_image(
        self, ref: str, platform: str | None = None, credentials: RegistryCredentials | None = None
    ) -> str:
        self._record("pull_image", ref)
        self.pull_credentials.append(credentials)
        self.pulls_in_flight.append(ref)
        try:
            if self.hold_pulls is not None:
                await self.hold_pulls.wait()
        finally:
            self.pulls_in_flight.remove(ref)
        image_id = self.registry.get(ref)
        if image_id is None:
            raise ImageNotFound(f"manifest for {ref} not found: manifest unknown", 404)
        repository = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
        self.images[ref] = ObservedImage(image_id, (f"{repository}@{registry_digest_of(image_id)}",))
        self.by_id[image_id] = self.images[ref]
        return image_id

    async def registry_digest(self, ref: str, credentials: RegistryCredentials | None = None) -> str:
        self._record("registry_digest", ref)
        image_id = self.registry.get(ref)
        if image_id is None:
            raise ImageNotFound(f"manifest for {ref} not found: manifest unknown", 404)
        return registry_digest_of(image_id)

    async def list_images(self) -> list[ObservedImage]:
        self._record("list_images", "")
        tags: dict[str, list[str]] = {}
        digests: dict[str, tuple[str, ...]] = {}
        for ref, image in self.images.items():
            tags.setdefault(image.id, []).append(ref)
            digests[image.id] = image.repo_digests
        return [ObservedImage(i, digests[i], tuple(sorted(refs))) for i, refs in tags.items()]

    async def image_ids_in_use(self) -> set[str]:
        self._record("image_ids_in_use", "")
        return {self._running_image(c) for c in self.containers.values()} - {""}

    def pulling(self) -> frozenset[str]:
        return frozenset(self.pulls_in_flight)

    async def remove_image(self, image: ObservedImage) -> None:
        self._record("remove_image", image.id)
        if image.id in await self.image_ids_in_use():
            raise InUse(f"unable to delete {image.id}: image is being used by a container", 409)
        for ref in [ref for ref, known in self.images.items() if known.id == image.id]:
            del self.images[ref]
        self.by_id.pop(image.id, None)

    async def events(self, selector: Labels) -> AsyncIterator[ContainerEvent]:
        _require(selector)
        self._events = asyncio.Queue()
        yield ContainerEvent(kind=CONNECTED)
        while (event := await self._events.get()) is not None:
            if event.kind in _STREAM_EVENTS or _matches(event.labels, selector):
                yield event

    async def close(self) -> None:
        self.closed = True
        if self._events is not None:
            self._events.put_nowait(None)

    # -- internals ----------------------------------------------------------------------------------

    def _record(self, operation: str, subject: str) -> None:
        self.calls.append((operation, subject))
        if operation in self._always:
            raise self._always[operation]
        queued = self._failures.get(operation)
        if queued:
            raise queued.pop(0)

    def _new(self, spec: ContainerSpec) -> FakeContainer:
        container_id = f"{next(self._ids):064x}"
        container = FakeContainer(
            id=container_id,
            spec=spec,
            name=spec.name,
            labels=dict(spec.labels),
            image=spec.image,
            image_id=self._image_id(spec.image),
        )
        self.containers[container_id] = container
        for volume, mount in _volume_mounts(spec):
            for path, content in self.volume_files.get(volume, {}).items():
                container.files[f"{mount}/{path}"] = content
        return container

    def _get(self, container_id: str) -> FakeContainer:
        container = self.containers.get(container_id)
        if container is None:
            raise NotFound(f"No such container: {container_id}", 404)
        return container

    def _image_id(self, ref: str) -> str:
        image = self.images.get(ref)
        return image.id if image else ""

    def _running_image(self, container: FakeContainer) -> str:
        """The image a container runs: the one it was created from; a test that swaps `image` by hand
        (as `docker` recreating it from another image would) changes it too."""
        if container.image != container.spec.image:
            return self._image_id(container.image)
        return container.image_id or self._image_id(container.image)


_STREAM_EVENTS = (CONNECTED, DISCONNECTED, RECONNECTED)
"""Events about the stream itself, which carry no container labels and are never filtered out."""


def _require(selector: Labels) -> None:
    if not selector:
        raise ValueError("a label selector is required")


def _matches(labels: Mapping[str, str], selector: Labels) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def replace_container(container: FakeContainer, **changes: object) -> None:
    """Change a fake container's fields in place (as `docker` commands by hand would)."""
    for key, value in changes.items():
        if not any(f.name == key for f in dataclasses.fields(container)):
            raise AttributeError(key)
        setattr(container, key, value)


def _volume_mounts(spec: ContainerSpec) -> list[tuple[str, str]]:
    """(volume, mount path) of the named volumes among the binds (a host path starts with /)."""
    mounts = []
    for bind in spec.binds:
        source, target = bind.split(":")[:2]
        if not source.startswith("/"):
            mounts.append((source, target))
    return mounts


def registry_digest_of(image_id: str) -> str:
    """The digest the fake registry serves for an image (its ID's last 64 characters, zero-padded)."""
    return f"sha256:{image_id[-64:]:0>64}"
