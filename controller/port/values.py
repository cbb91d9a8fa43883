"""The values that cross the container-runtime port, in both directions.

Out of the runtime: what it reports (`ObservedContainer`, `ObservedVolume`, `ObservedImage`,
`ContainerEvent`). Into it: what the reconcile asks for (`ContainerSpec`, `FileTree`,
`RegistryCredentials`). All are frozen and free of any SDK's shapes: the adapter translates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Literal

ContainerState = Literal[
    "created", "running", "restarting", "exited", "paused", "dead", "removing", "unknown"
]
Health = Literal["starting", "healthy", "unhealthy"]
Labels = Mapping[str, str]

NO_LABELS: Labels = MappingProxyType({})

CONNECTED = "connected"
"""A `ContainerEvent.kind`: the event stream is subscribed."""
DISCONNECTED = "disconnected"
"""A `ContainerEvent.kind`: the live stream ended or broke (the daemon may be gone): look now, rather
than report the last known state until the next resync."""
RECONNECTED = "reconnected"
"""A `ContainerEvent.kind`: events may have been missed (stream re-established, or the consumer fell
behind): re-list everything."""


# --- what the runtime reports ---------------------------------------------------------------------


@dataclass(frozen=True)
class ObservedContainer:
    """One container as the runtime reports it. Labels are read-only; the value is not hashable."""

    id: str
    name: str
    image: str
    """The image reference the container was created from, e.g. `repo:tag`."""
    image_id: str
    labels: Labels
    state: ContainerState
    health: Health | None
    """The healthcheck verdict while the container runs; None without a healthcheck or when not running."""
    exit_code: int | None
    """The last exit code once the process has exited (exited, dead, restarting); None otherwise."""
    host_port: int | None
    """The host port that publishes the agent port on the loopback interface, if any."""
    created: float | None
    """Creation time in epoch seconds; None if the runtime did not say."""
    detail: bool
    """True for a full inspection; False for a list entry, which cannot know the fields below."""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    restart_count: int | None = None
    oom_killed: bool | None = None
    uptime: tuple[float, float] | None = None
    """A list entry of a running container: the seconds it may have run so far at the time of the list,
    as the interval [low, high) the daemon's humanised `Up …` allows; None otherwise."""

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass(frozen=True)
class ObservedVolume:
    name: str
    labels: Labels = field(default_factory=lambda: NO_LABELS)
    driver: str = ""
    created: float | None = None

    def carries(self, labels: Labels) -> bool:
        """True when every given label is on the volume with the same value."""
        return all(self.labels.get(key) == value for key, value in labels.items())


@dataclass(frozen=True)
class ObservedImage:
    """A local image: its ID and the registry digests it is known under (`repo@sha256:...`)."""

    id: str
    repo_digests: tuple[str, ...] = ()
    repo_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContainerEvent:
    """Something happened to a container, or to the event stream itself (CONNECTED, RECONNECTED).

    Events are hints that something changed, not the state: the consumer reacts by observing again.
    """

    kind: str
    """A container action (`die`, `oom`, `destroy`, `health_status`, ...), or CONNECTED / RECONNECTED."""
    action: str = ""
    """The raw action, e.g. `health_status: healthy`."""
    container_id: str = ""
    name: str = ""
    labels: Labels = field(default_factory=lambda: NO_LABELS)
    exit_code: int | None = None
    """For `die`: the process's exit code (137 after SIGKILL)."""
    health: Health | None = None
    """For `health_status`: the new verdict."""
    time: float | None = None
    """When the runtime recorded it, in epoch seconds."""


# --- what the reconcile asks for -------------------------------------------------------------------


@dataclass(frozen=True)
class PortBinding:
    container_port: str
    """`<port>/<protocol>`, e.g. `8000/tcp`."""
    host_ip: str
    host_port: str = ""
    """"" lets the runtime choose an ephemeral port."""


@dataclass(frozen=True)
class HealthCheck:
    """A container health check the runtime runs inside the container (Docker's HEALTHCHECK)."""

    test: tuple[str, ...]
    """The command, exec form (no shell parses it)."""
    interval_seconds: int
    timeout_seconds: int
    retries: int
    """Failures in a row before the container is unhealthy."""
    start_period_seconds: int
    """Failures this soon after the start do not count."""


@dataclass(frozen=True)
class ContainerSpec:
    """Everything the runtime is told when the container is created, and nothing else.

    The config hash is computed over this value (see `controller.core.plan`): a field added here is
    hashed without anyone having to remember it, so a change to it always recreates the container.
    """

    name: str
    image: str
    platform: str | None
    """`os/arch` of the image variant; None for the runtime's default."""
    env: tuple[str, ...] = field(repr=False)
    labels: Labels
    exposed_port: str
    port_bindings: tuple[PortBinding, ...]
    restart_policy: str
    network: str | None
    """The network to join (by the ID `ensure_network` returns at create); None joins none."""
    aliases: tuple[str, ...]
    binds: tuple[str, ...]
    read_only_rootfs: bool
    tmpfs: Mapping[str, str]
    memory: int
    """Bytes; 0 for no cap."""
    nano_cpus: int
    """Billionths of a CPU; 0 for no cap."""
    privileged: bool
    pid_mode: str | None
    network_mode: str
    """`host`, or the network's name."""
    cap_drop: tuple[str, ...]
    """Capabilities removed from the runtime's default set, e.g. `ALL`; () removes none."""
    cap_add: tuple[str, ...]
    """Capabilities granted on top of what is left, e.g. `CHOWN`; () grants none."""
    security_opt: tuple[str, ...]
    """Security options, e.g. `no-new-privileges`; () for the runtime's defaults."""
    pids_limit: int
    """The most processes and threads the container may hold; 0 for no limit."""
    health_check: HealthCheck | None = None
    """Replaces the image's HEALTHCHECK; None keeps it. (Left out of the config hash while None.)"""
    runtime: str | None = None
    """The OCI runtime (e.g. runsc); None for the daemon's default. (Left out of the hash while None.)"""
    network_internal: bool | None = None
    """`network` is internal and has no address on the host (an isolated agent's): made so by
    `ensure_network`. None: an ordinary bridge. (Left out of the hash while None.)"""
    dns: tuple[str, ...] | None = None
    """The DNS servers the runtime's resolver forwards names it does not know to; None: the host's.
    (Left out of the hash while None.)"""
    entrypoint: tuple[str, ...] | None = None
    """Replaces the image's entrypoint (its command then comes from the image too); None keeps it.
    (Left out of the hash while None.)"""


@dataclass(frozen=True)
class File:
    content: bytes = field(repr=False)
    mode: int = 0o644
    if_absent: bool = False
    """Written only when the container has no file at that path (the volume's copy is kept)."""


@dataclass(frozen=True)
class FileTree:
    """Files to put into a container before it starts, under `root` (parent directories are created)."""

    root: str
    files: Mapping[str, File] = field(repr=False)


@dataclass(frozen=True)
class RegistryCredentials:
    """Credentials for one registry: a username and password, or an identity token."""

    serveraddress: str
    username: str = ""
    password: str = field(default="", repr=False)
    identitytoken: str = field(default="", repr=False)


@dataclass(frozen=True)
class HostFacts:
    """What a daemon says about itself (`docker info`): what placement may fill, and what it runs."""

    server_version: str = ""
    api_version: str = ""
    operating_system: str = ""
    architecture: str = ""
    cpus: int = 0
    memory_bytes: int = 0
    runtimes: tuple[str, ...] = ()
    """The OCI runtimes it offers, by the names a container asks for (runc, runsc, ...)."""
