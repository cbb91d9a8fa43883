"""`ContainerRuntime`: everything the reconcile loop, the observer and the orphan sweep ask of a container
engine, and nothing more.

Selectors are label maps: every call that lists or follows takes one, and an empty selector is refused,
because the controller only ever looks at what it labelled. Every method raises a
`controller.port.errors.ContainerRuntimeError` subclass on failure, never an SDK's own exception.

Idempotence is part of the contract where the engine's answer allows it: removing what is already gone
succeeds, ensuring a network or volume that exists is a no-op. What needs a decision is reported
instead: `Conflict` when a container name is taken, `InUse` for a volume still mounted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

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


class ContainerRuntime(Protocol):
    async def ping(self) -> bool:
        """True when the runtime answers; False when it does not (never raises)."""
        ...

    async def info(self) -> HostFacts:
        """The daemon's version, CPUs and memory. Raises like every other call when it does not answer."""
        ...

    async def confirm_accepting(self) -> None:
        """Raise `RuntimeUnavailable` unless the daemon answers on a connection made for the question. A
        daemon that is shutting down has already closed its socket, but still serves the connections made
        before, and goes on to stop every container: a start sent then leaves containerd's task behind, and
        the container can never start again."""
        ...

    # -- containers --------------------------------------------------------------------------------

    async def list_containers(self, selector: Labels) -> list[ObservedContainer]:
        """All containers (any state) carrying every label of `selector`, in one call (detail False)."""
        ...

    async def inspect_container(self, name_or_id: str) -> ObservedContainer | None:
        """Everything known about one container (detail True); None when there is no such container."""
        ...

    async def network_received(self, container_id: str) -> int | None:
        """Bytes the running container has received on its network interfaces (loopback not counted:
        a health check inside it is not traffic) since it started; None when it does not run or has no
        network."""
        ...

    async def create_container(
        self, spec: ContainerSpec, files: FileTree, *, network_id: str | None = None
    ) -> str:
        """Create (not start) a container and put `files` into it; return its ID.

        `network_id` is what `ensure_network(spec.network)` returned: containers join by ID, since a
        name two networks share is ambiguous. Raises `Conflict` when the name is taken. When the files
        cannot be written, the created container is left for the next pass (`write_files`, `start`).
        """
        ...

    async def write_files(self, container_id: str, files: FileTree) -> None:
        """Put `files` into a created or running container (modes as given, owned by root)."""
        ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, grace: float) -> None:
        """Stop gracefully, killing after `grace` seconds. Stopping a stopped container is a no-op."""
        ...

    async def rename_container(self, container_id: str, name: str) -> None:
        """Give the container another name (its DNS name on user networks follows)."""
        ...

    async def disconnect_network(self, container_id: str, network: str) -> None:
        """Take the container off a network (its name and aliases there stop resolving)."""
        ...

    async def unpause_container(self, container_id: str) -> None: ...

    async def remove_container(self, container_id: str) -> None:
        """Force-remove, running or not; already gone (or being removed) is success. Named volumes stay."""
        ...

    # -- volumes and networks ----------------------------------------------------------------------

    async def ensure_network(self, name: str, *, internal: bool = False, labels: Labels = NO_LABELS) -> str:
        """Make sure one network called exactly `name` exists; return its ID. `internal`: made internal
        and without an address on the host (nothing on it reaches the host or beyond); one of that name
        that is not so raises `ContainerRuntimeError`. `labels` go on a network made here."""
        ...

    async def connect_network(self, container_id: str, network_id: str, aliases: tuple[str, ...]) -> None:
        """Attach a created container to one more network, under `aliases` there."""
        ...

    async def list_networks(self, selector: Labels) -> dict[str, Labels]:
        """The networks carrying every label of `selector`: name -> labels."""
        ...

    async def remove_network(self, name: str) -> None:
        """Remove a network; a missing one is success, one with containers on it raises `InUse`."""
        ...

    async def ensure_volume(self, name: str, labels: Labels) -> ObservedVolume:
        """Create the volume with `labels`, or return the existing one (check `carries` before owning it)."""
        ...

    async def list_volumes(self, selector: Labels) -> list[ObservedVolume]: ...

    async def remove_volume(self, name: str) -> None:
        """Remove a volume; a missing one is success, one still mounted raises `InUse`."""
        ...

    # -- images ------------------------------------------------------------------------------------

    async def inspect_image(self, ref: str) -> ObservedImage | None:
        """The local image for `ref`, or None when it has not been pulled."""
        ...

    async def pull_image(
        self, ref: str, platform: str | None = None, credentials: RegistryCredentials | None = None
    ) -> str:
        """Pull `ref` (for `platform`, None for the runtime's default) and return the local image ID.

        Raises `ImageNotFound`, `RegistryAuthFailed` or `RegistryUnavailable` for the registry's answers.
        """
        ...

    async def registry_digest(self, ref: str, credentials: RegistryCredentials | None = None) -> str:
        """The digest (`sha256:...`) the registry serves for `ref` now, without pulling it: one request.

        Raises `ImageNotFound`, `RegistryAuthFailed` or `RegistryUnavailable` for the registry's answers.
        """
        ...

    async def list_images(self) -> list[ObservedImage]:
        """Every local image (tags and digests; untagged ones too)."""
        ...

    async def image_ids_in_use(self) -> set[str]:
        """The image IDs of every container on the host, in any state, whoever made it."""
        ...

    def pulling(self) -> frozenset[str]:
        """The references being pulled right now."""
        ...

    async def remove_image(self, image: ObservedImage) -> None:
        """Remove an image: each of its tags, then (untagged) its ID; never by force, so one a container
        uses stays (raises `InUse`). A missing one is success."""
        ...

    # -- events and lifecycle ----------------------------------------------------------------------

    def events(self, selector: Labels) -> AsyncIterator[ContainerEvent]:
        """Follow events of containers carrying `selector`: CONNECTED once subscribed, DISCONNECTED
        when a live stream ends, RECONNECTED after any gap (re-list then), then container actions.
        Reconnects by itself; ends when closed."""
        ...

    async def close(self) -> None:
        """End event streams and release connections. Idempotent."""
        ...
