"""Workspace tier → container isolation and resource limits (the Go provisioner's ApplyTierConfig, as data).

Tier 1 sandboxed, 2 standard (the safe default for anything unknown), 3 privileged with host PID, 4 full host.
Beyond the Go provisioner, every tier has a pids limit, and tiers 1 and 2 drop capabilities and set
no-new-privileges; tier 1 also has memory and CPU caps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

DOCKER_SOCKET_BIND = "/var/run/docker.sock:/var/run/docker.sock"
TIER1_TMPFS: Mapping[str, str] = MappingProxyType({"/tmp": "rw,noexec,nosuid,size=64m"})
MIB = 1024 * 1024
NANO_CPUS_PER_CPU = 1_000_000_000
SHARES_PER_CPU = 1024

NO_NEW_PRIVILEGES = "no-new-privileges"
"""A `security_opt`: no process in the container gains privileges through setuid/setgid binaries or file
capabilities, so a dropped capability stays dropped."""
DROP_ALL_CAPABILITIES: tuple[str, ...] = ("ALL",)
TIER2_CAPABILITIES: tuple[str, ...] = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "NET_BIND_SERVICE",
)
"""Tier 2's capabilities: Docker's default set without NET_RAW (raw sockets: spoofing on the workspace
network), MKNOD (device nodes), SYS_CHROOT, AUDIT_WRITE (the host's audit log), SETFCAP and SETPCAP
(handing capabilities to files and processes). What is left is what root needs to install packages and
manage its own files and processes."""


@dataclass(frozen=True)
class TierLimits:
    """A tier's cap: memory in MiB, CPU in "shares" (1024 shares are one whole CPU), and processes."""

    memory_mb: int
    cpu_shares: int
    pids_limit: int


DEFAULT_TIER_LIMITS: Mapping[int, TierLimits] = MappingProxyType(
    {
        # Tier 1 runs untrusted code: small caps (a quarter GiB, half a CPU) and few processes, so a runaway
        # or fork bomb starves neither the host nor its neighbours.
        1: TierLimits(memory_mb=256, cpu_shares=512, pids_limit=256),
        # The pids limits grow with the tier's trust and size, but none is unlimited: a fork bomb in any
        # workspace exhausts its own limit, not the host's process table.
        2: TierLimits(memory_mb=512, cpu_shares=1024, pids_limit=1024),
        3: TierLimits(memory_mb=2048, cpu_shares=2048, pids_limit=4096),
        4: TierLimits(memory_mb=4096, cpu_shares=4096, pids_limit=8192),
    }
)


@dataclass(frozen=True)
class TierHostConfig:
    """The HostConfig pieces a tier decides, plus how it changes the mounts and networking."""

    tier: int
    privileged: bool = False
    pid_mode: str | None = None
    read_only_rootfs: bool = False
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    memory_bytes: int = 0
    nano_cpus: int = 0
    pids_limit: int = 0
    """0 for no limit."""
    cap_drop: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    # Tier 1 keeps only the /configs mount: no /workspace and no session volume (as in the Go provisioner).
    config_mount_only: bool = False
    mount_docker_socket: bool = False
    host_network: bool = False


def effective_tier(tier: int) -> int:
    """Tiers outside 1..4 behave as tier 2, the resource-limited, unprivileged default."""
    return tier if tier in (1, 2, 3, 4) else 2


def tier_memory_mb(tier: int, limits: Mapping[int, TierLimits] = DEFAULT_TIER_LIMITS) -> int:
    """The tier's memory cap in MiB; 0 (no cap) for tiers without limits."""
    entry = limits.get(tier)
    return entry.memory_mb if entry else 0


def tier_cpu_shares(tier: int, limits: Mapping[int, TierLimits] = DEFAULT_TIER_LIMITS) -> int:
    """The tier's CPU allocation in shares; 0 (no cap) for tiers without limits."""
    entry = limits.get(tier)
    return entry.cpu_shares if entry else 0


def tier_pids_limit(tier: int, limits: Mapping[int, TierLimits] = DEFAULT_TIER_LIMITS) -> int:
    """How many processes and threads the tier's container may hold; 0 (no limit) for tiers without limits."""
    entry = limits.get(tier)
    return entry.pids_limit if entry else 0


def memory_bytes(memory_mb: int) -> int:
    return memory_mb * MIB


def nano_cpus(cpu_shares: int) -> int:
    """Shares become a hard NanoCPUs cap, not Docker's relative CpuShares: 1024 shares = 1e9 = one CPU."""
    return cpu_shares * NANO_CPUS_PER_CPU // SHARES_PER_CPU


def tier_host_config(tier: int, limits: Mapping[int, TierLimits] = DEFAULT_TIER_LIMITS) -> TierHostConfig:
    resolved = effective_tier(tier)
    memory = memory_bytes(tier_memory_mb(resolved, limits))
    cpus = nano_cpus(tier_cpu_shares(resolved, limits))
    pids = tier_pids_limit(resolved, limits)
    if resolved == 1:
        # Sandboxed: read-only root with a small scratch /tmp, memory and CPU caps (the Go provisioner had
        # none), and no capability at all: the agent serves an unprivileged port and writes only what it
        # owns. no-new-privileges keeps a setuid binary from handing any back.
        return TierHostConfig(
            tier=1,
            read_only_rootfs=True,
            tmpfs=dict(TIER1_TMPFS),
            config_mount_only=True,
            memory_bytes=memory,
            nano_cpus=cpus,
            pids_limit=pids,
            cap_drop=DROP_ALL_CAPABILITIES,
            security_opt=(NO_NEW_PRIVILEGES,),
        )
    if resolved == 3:
        # Privileged with host PID, but still on the workspace network so workspaces reach each other by name.
        # Privileged grants every capability, so dropping some or no-new-privileges would only pretend;
        # the pids limit still holds.
        return TierHostConfig(
            tier=3, privileged=True, pid_mode="host", memory_bytes=memory, nano_cpus=cpus, pids_limit=pids
        )
    if resolved == 4:
        # Full host: privileged, host PID, host network and the Docker socket (the last bind).
        # The Go provisioner also attached the container to the user bridge and published
        # 127.0.0.1:<ephemeral>, which Docker refuses at start ("conflicts with existing route"). A
        # host-network container can have neither, so tier 4 joins no user network, publishes no port, and
        # is reached at http://127.0.0.1:8000 on the Docker host. As for tier 3, only the pids limit
        # is added: privileged means every capability.
        return TierHostConfig(
            tier=4,
            privileged=True,
            pid_mode="host",
            mount_docker_socket=True,
            host_network=True,
            memory_bytes=memory,
            nano_cpus=cpus,
            pids_limit=pids,
        )
    # Standard: Docker's default capabilities but the six an agent does not need (TIER2_CAPABILITIES),
    # and no-new-privileges so no setuid binary or file capability gains back what was dropped.
    return TierHostConfig(
        tier=2,
        memory_bytes=memory,
        nano_cpus=cpus,
        pids_limit=pids,
        cap_drop=DROP_ALL_CAPABILITIES,
        cap_add=TIER2_CAPABILITIES,
        security_opt=(NO_NEW_PRIVILEGES,),
    )
