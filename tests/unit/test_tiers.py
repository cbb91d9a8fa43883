"""Tier → isolation and resource caps, as the Go provisioner's ApplyTierConfig (except tier 4's network)."""

from __future__ import annotations

import pytest

from controller.core.tiers import (
    DEFAULT_TIER_LIMITS,
    TierLimits,
    effective_tier,
    memory_bytes,
    nano_cpus,
    tier_cpu_shares,
    tier_host_config,
    tier_memory_mb,
    tier_pids_limit,
)
from controller.settings import ControllerSettings, tier_limits_from_env

MIB = 1024 * 1024
# Docker's default capability set (moby's oci/caps/defaults.go), written out so that the test states it.
DOCKER_DEFAULT_CAPABILITIES = {
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
    "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
}  # fmt: skip
TIER2_REMOVED = {"NET_RAW", "MKNOD", "SYS_CHROOT", "AUDIT_WRITE", "SETFCAP", "SETPCAP"}


@pytest.mark.parametrize(("tier", "mb"), [(1, 256), (2, 512), (3, 2048), (4, 4096), (9, 0)])
def test_tier_memory_defaults(tier: int, mb: int) -> None:
    """Tiers 2-4 as in the Go provisioner; tier 1, uncapped there, now has a quarter GiB."""
    assert tier_memory_mb(tier) == mb


@pytest.mark.parametrize(("tier", "shares"), [(1, 512), (2, 1024), (3, 2048), (4, 4096), (9, 0)])
def test_tier_cpu_share_defaults(tier: int, shares: int) -> None:
    assert tier_cpu_shares(tier) == shares


@pytest.mark.parametrize(("tier", "pids"), [(1, 256), (2, 1024), (3, 4096), (4, 8192), (9, 0)])
def test_tier_pids_limit_defaults(tier: int, pids: int) -> None:
    assert tier_pids_limit(tier) == pids


# tier, cap_drop, cap_add, security_opt, pids limit, memory bytes, NanoCPUs
HARDENING = [
    (1, ("ALL",), (), ("no-new-privileges",), 256, 256 * MIB, 500_000_000),
    (
        2,
        ("ALL",),
        ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "NET_BIND_SERVICE"),
        ("no-new-privileges",),
        1024,
        512 * MIB,
        1_000_000_000,
    ),
    # Privileged: every capability anyway, so nothing is dropped or added; only the pids limit is new.
    (3, (), (), (), 4096, 2048 * MIB, 2_000_000_000),
    (4, (), (), (), 8192, 4096 * MIB, 4_000_000_000),
]


@pytest.mark.parametrize(("tier", "cap_drop", "cap_add", "security_opt", "pids", "memory", "cpus"), HARDENING)
def test_each_tier_has_its_capabilities_security_options_and_limits(
    tier: int,
    cap_drop: tuple[str, ...],
    cap_add: tuple[str, ...],
    security_opt: tuple[str, ...],
    pids: int,
    memory: int,
    cpus: int,
) -> None:
    config = tier_host_config(tier)
    assert config.cap_drop == cap_drop
    assert config.cap_add == cap_add
    assert config.security_opt == security_opt
    assert config.pids_limit == pids
    assert (config.memory_bytes, config.nano_cpus) == (memory, cpus)


def test_tier2_keeps_dockers_default_capabilities_but_six() -> None:
    config = tier_host_config(2)
    assert len(config.cap_add) == len(set(config.cap_add)) == 8
    assert set(config.cap_add) == DOCKER_DEFAULT_CAPABILITIES - TIER2_REMOVED
    assert config.cap_drop == ("ALL",)


def test_settings_override_tier1_memory_cpu_and_every_tiers_pids_limit() -> None:
    settings = ControllerSettings.from_env(
        {
            "TIER1_MEMORY_MB": "128",
            "TIER1_CPU_SHARES": "256",
            "TIER1_PIDS_LIMIT": "64",
            "TIER2_PIDS_LIMIT": "2048",
            "TIER3_PIDS_LIMIT": "100",
            "TIER4_PIDS_LIMIT": "+16384",
        }
    )
    tier1 = tier_host_config(1, settings.tier_limits)
    assert (tier1.memory_bytes, tier1.nano_cpus, tier1.pids_limit) == (128 * MIB, 250_000_000, 64)
    assert [tier_host_config(tier, settings.tier_limits).pids_limit for tier in (2, 3, 4)] == [
        2048,
        100,
        16384,
    ]
    # The other tiers' memory and CPU keep their defaults.
    tier2 = tier_host_config(2, settings.tier_limits)
    assert (tier2.memory_bytes, tier2.nano_cpus) == (512 * MIB, 1_000_000_000)


@pytest.mark.parametrize("raw", ["not-a-number", "0", "-5", "", " 64", "1_000", "1.5", str(2**63)])
def test_malformed_tier1_and_pids_settings_keep_the_defaults(raw: str) -> None:
    names = ["TIER1_MEMORY_MB", "TIER1_CPU_SHARES"] + [f"TIER{tier}_PIDS_LIMIT" for tier in (1, 2, 3, 4)]
    settings = ControllerSettings.from_env(dict.fromkeys(names, raw))
    assert [tier_host_config(tier, settings.tier_limits) for tier in (1, 2, 3, 4)] == [
        tier_host_config(tier) for tier in (1, 2, 3, 4)
    ]
    tier1 = tier_host_config(1, settings.tier_limits)
    assert (tier1.memory_bytes, tier1.nano_cpus, tier1.pids_limit) == (256 * MIB, 500_000_000, 256)


def test_an_unknown_tier_is_hardened_as_tier2() -> None:
    assert tier_host_config(7).cap_add == tier_host_config(2).cap_add
    assert tier_host_config(7).pids_limit == 1024


def test_tier_memory_env_override() -> None:
    limits = tier_limits_from_env({"TIER2_MEMORY_MB": "1024"})
    assert tier_memory_mb(2, limits) == 1024
    assert tier_memory_mb(2, tier_limits_from_env({"TIER2_MEMORY_MB": "not-a-number"})) == 512
    assert tier_memory_mb(2, tier_limits_from_env({"TIER2_MEMORY_MB": "0"})) == 512


def test_tier_cpu_shares_env_override() -> None:
    assert tier_cpu_shares(4, tier_limits_from_env({"TIER4_CPU_SHARES": "8192"})) == 8192
    assert tier_cpu_shares(4, tier_limits_from_env({"TIER4_CPU_SHARES": "-1"})) == 4096


def test_tier1_is_sandboxed_read_only_with_tmpfs_and_small_caps() -> None:
    config = tier_host_config(1)
    assert config.read_only_rootfs is True
    assert dict(config.tmpfs) == {"/tmp": "rw,noexec,nosuid,size=64m"}
    assert config.config_mount_only is True
    assert (config.memory_bytes, config.nano_cpus) == (256 * MIB, 500_000_000)
    assert (config.privileged, config.pid_mode, config.host_network) == (False, None, False)


def test_tier2_is_standard_with_caps() -> None:
    config = tier_host_config(2)
    assert (config.memory_bytes, config.nano_cpus) == (512 * MIB, 1_000_000_000)
    assert (config.privileged, config.read_only_rootfs, config.mount_docker_socket) == (False, False, False)


def test_tier3_is_privileged_with_host_pid_and_stays_on_the_network() -> None:
    config = tier_host_config(3)
    assert (config.privileged, config.pid_mode) == (True, "host")
    assert (config.host_network, config.mount_docker_socket) == (False, False)
    assert (config.memory_bytes, config.nano_cpus) == (2048 * MIB, 2_000_000_000)


def test_tier4_has_full_host_access() -> None:
    config = tier_host_config(4)
    assert (config.privileged, config.pid_mode, config.host_network) == (True, "host", True)
    assert config.mount_docker_socket
    assert (config.memory_bytes, config.nano_cpus) == (4096 * MIB, 4_000_000_000)


@pytest.mark.parametrize("tier", [0, 99, -1])
def test_unknown_tiers_default_to_tier2(tier: int) -> None:
    assert effective_tier(tier) == 2
    assert tier_host_config(tier) == tier_host_config(2)


@pytest.mark.parametrize(
    ("tier", "privileged", "host_net", "host_pid", "read_only"),
    [
        (1, False, False, False, True),
        (2, False, False, False, False),
        (3, True, False, True, False),
        (4, True, True, True, False),
    ],
)
def test_tier_escalation(
    tier: int, privileged: bool, host_net: bool, host_pid: bool, read_only: bool
) -> None:
    config = tier_host_config(tier)
    assert config.privileged is privileged
    assert config.host_network is host_net
    assert (config.pid_mode == "host") is host_pid
    assert config.read_only_rootfs is read_only


def test_tier3_uses_env_override() -> None:
    limits = tier_limits_from_env({"TIER3_MEMORY_MB": "8192", "TIER3_CPU_SHARES": "4096"})
    config = tier_host_config(3, limits)
    assert config.memory_bytes == 8192 * MIB
    assert config.nano_cpus == 4_000_000_000


def test_tier3_default_cap() -> None:
    config = tier_host_config(3, DEFAULT_TIER_LIMITS)
    assert (config.memory_bytes, config.nano_cpus) == (2048 * MIB, 2_000_000_000)


def test_cpu_shares_are_a_hard_nano_cpu_cap() -> None:
    assert nano_cpus(1024) == 1_000_000_000
    assert nano_cpus(512) == 500_000_000
    assert memory_bytes(3) == 3 * MIB


def test_tier_without_configured_limits_gets_no_cap() -> None:
    config = tier_host_config(2, {3: TierLimits(1, 1, 1)})
    assert (config.memory_bytes, config.nano_cpus, config.pids_limit) == (0, 0, 0)
    # The capabilities and security options are the tier's, not limits: they stay.
    assert (config.cap_drop, config.security_opt) == (("ALL",), ("no-new-privileges",))
