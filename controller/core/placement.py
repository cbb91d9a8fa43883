"""Which Docker host a Workspace goes to: a pure function of its request, its spec.placement and the hosts.

The rules, in order:
1. The candidates are the hosts `spec.placement` names (`host`) or selects (`hostSelector`); all of them
   when it says nothing.
2. A candidate must be Ready (its daemon answers and its capacity is known), schedulable (not cordoned),
   and have room: its capacity minus what is allocated there covers the tier's memory and CPUs. A
   tier 4 Workspace takes the host's network, so a host takes at most one. The implicit host (the
   single daemon of a configuration without DockerHosts) is unbounded: it takes what fits or not, as the
   single daemon always did, and its capacity only weighs the spreading.
3. Of those, the one left least loaded afterwards wins (the larger of its memory and CPU fractions), so
   Workspaces spread; ties go to the host with fewer Workspaces, then to the name.
4. When none can take it, the answer is `Unschedulable` with a message that says, host by host, what is
   short: the Workspace is placed as soon as that changes.

Placement happens once: a placed Workspace stays where its volumes are (`placement_conflict` says when its
spec no longer admits that host).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.api.workspace import Placement
from controller.core.causes import Cause, Reason
from controller.core.selectors import selector_matches
from controller.core.tiers import SHARES_PER_CPU, TierLimits

HOST_NETWORK_TIER = 4
MAX_HOSTS_NAMED = 6
"""How many hosts an Unschedulable message details before it summarises the rest."""


@dataclass(frozen=True)
class Resources:
    cpus: float = 0.0
    memory_mib: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpus + other.cpus, self.memory_mib + other.memory_mib)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpus - other.cpus, self.memory_mib - other.memory_mib)

    def covers(self, other: Resources) -> bool:
        # A hair of tolerance: CPUs are sums of fractions.
        return self.cpus + 1e-9 >= other.cpus and self.memory_mib >= other.memory_mib


@dataclass(frozen=True)
class Request:
    """What a Workspace takes wherever it runs: its tier's memory and CPUs."""

    tier: int
    resources: Resources
    container_runtime: str | None = None
    """The OCI runtime it must run under (spec.containerRuntime); None: any host's default."""

    @classmethod
    def for_tier(
        cls, tier: int, limits: Mapping[int, TierLimits], container_runtime: str | None = None
    ) -> Request:
        limit = limits[tier]
        return cls(tier, Resources(limit.cpu_shares / SHARES_PER_CPU, limit.memory_mb), container_runtime)


@dataclass(frozen=True)
class HostView:
    """A host as placement sees it. `capacity` None: never measured (the daemon has not answered yet)."""

    name: str
    labels: Mapping[str, str]
    ready: bool
    unschedulable: bool
    capacity: Resources | None
    allocated: Resources
    workspaces: int = 0
    host_network_taken: bool = False
    bounded: bool = True
    """False: the host takes whatever is placed on it (the implicit host, as a single daemon always
    did); its capacity only weighs the spreading."""
    runtimes: frozenset[str] | None = None
    """The OCI runtimes it offers (None: not known)."""

    @property
    def free(self) -> Resources:
        return (self.capacity or Resources()) - self.allocated


@dataclass(frozen=True)
class Placed:
    host: str


@dataclass(frozen=True)
class Unschedulable:
    cause: Cause


def admits(placement: Placement, host: str, labels: Mapping[str, str]) -> bool:
    """Whether `spec.placement` allows `host` (with `labels`)."""
    if placement.host is not None:
        return placement.host == host
    if placement.host_selector is not None:
        return selector_matches(placement.host_selector, labels)
    return True


def place(request: Request, placement: Placement, hosts: Sequence[HostView]) -> Placed | Unschedulable:
    candidates = [h for h in hosts if admits(placement, h.name, h.labels)]
    if not candidates:
        return Unschedulable(Cause(Reason.UNSCHEDULABLE, _no_candidate(placement, hosts)))
    fitting: list[HostView] = []
    short: list[str] = []
    for host in sorted(candidates, key=lambda h: h.name):
        problem = _problem(request, host)
        if problem is None:
            fitting.append(host)
        else:
            short.append(f"{host.name} {problem}")
    if not fitting:
        return Unschedulable(Cause(Reason.UNSCHEDULABLE, _nowhere(request, short)))
    best = min(fitting, key=lambda h: (_load_after(request, h), h.workspaces, h.name))
    return Placed(best.name)


def placement_conflict(placement: Placement, host: str, labels: Mapping[str, str]) -> Cause | None:
    """The Stalled cause when a placed Workspace's spec no longer admits the host it is on."""
    if admits(placement, host, labels):
        return None
    asked = (
        f"DockerHost {placement.host}"
        if placement.host is not None
        else "hosts matching spec.placement.hostSelector"
    )
    return Cause(
        Reason.PLACEMENT_CONFLICT,
        f"the Workspace is placed on DockerHost {host}, where its volumes are, and stays there; "
        f"spec.placement now asks for {asked}: to move it, delete and recreate the Workspace",
    )


def describe(request: Request) -> str:
    r = request.resources
    under = f" under container runtime {request.container_runtime}" if request.container_runtime else ""
    return f"a tier {request.tier} Workspace ({r.memory_mib} MiB, {_cpus(r.cpus)}){under}"


def runtime_missing(runtime: str | None, offered: frozenset[str] | None) -> str | None:
    """Why a host offering `offered` cannot run a container under `runtime` (None: it can, or nobody
    knows yet)."""
    if runtime is None or offered is None or runtime in offered:
        return None
    return (
        f"does not offer the container runtime {runtime} (it offers {', '.join(sorted(offered)) or 'none'})"
    )


def _problem(request: Request, host: HostView) -> str | None:
    if not host.ready or host.capacity is None:
        return "is not Ready"
    if host.unschedulable:
        return "is cordoned (unschedulable)"
    lacking = runtime_missing(request.container_runtime, host.runtimes)
    if lacking is not None:
        return lacking
    if request.tier == HOST_NETWORK_TIER and host.host_network_taken:
        return "already runs a tier 4 Workspace (the host network's port 8000)"
    free = host.free
    if not host.bounded or free.covers(request.resources):
        return None
    missing = []
    if free.memory_mib < request.resources.memory_mib:
        missing.append(f"{max(free.memory_mib, 0)} MiB")
    if free.cpus + 1e-9 < request.resources.cpus:
        missing.append(_cpus(max(free.cpus, 0.0)))
    return "has only " + " and ".join(missing) + " free"


def _load_after(request: Request, host: HostView) -> float:
    assert host.capacity is not None
    used = host.allocated + request.resources
    memory = used.memory_mib / host.capacity.memory_mib if host.capacity.memory_mib else 1.0
    cpus = used.cpus / host.capacity.cpus if host.capacity.cpus else 1.0
    return max(memory, cpus)


def _no_candidate(placement: Placement, hosts: Sequence[HostView]) -> str:
    if placement.host is not None:
        return f"DockerHost {placement.host} (spec.placement.host) does not exist"
    if placement.host_selector is not None:
        return f"no DockerHost matches spec.placement.hostSelector (of {len(hosts)} hosts)"
    return "there is no DockerHost to place the Workspace on"


def _nowhere(request: Request, short: list[str]) -> str:
    named = short[:MAX_HOSTS_NAMED]
    more = len(short) - len(named)
    tail = f"; and {more} more" if more else ""
    return f"no DockerHost can take {describe(request)}: " + "; ".join(named) + tail


def _cpus(cpus: float) -> str:
    text = f"{cpus:.2f}".rstrip("0").rstrip(".")
    return f"{text} CPU" + ("" if text == "1" else "s")
