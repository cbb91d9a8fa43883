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
)
from controller.settings import tier_limits_from_env

MIB = 1024 * 1024


@pytest.mark.parametrize(("tier", "mb"), [(1, 0), (2, 512), (3, 2048), (4, 4096), (9, 0)])
def test_tier_memory_defaults_match_the_go_provisioner(tier: int, mb: int) -> None:
    assert tier_memory_mb(tier) == mb


@pytest.mark.parametrize(("tier", "shares"), [(1, 0), (2, 1024), (3, 2048), (4, 4096), (9, 0)])
def test_tier_cpu_share_defaults_match_the_go_provisioner(tier: int, shares: int) -> None:
    assert tier_cpu_shares(tier) == shares


def test_tier_memory_env_override() -> None:
    limits = tier_limits_from_env({"TIER2_MEMORY_MB": "1024"})
    assert tier_memory_mb(2, limits) == 1024
    assert tier_memory_mb(2, tier_limits_from_env({"TIER2_MEMORY_MB": "not-a-number"})) == 512
    assert tier_memory_mb(2, tier_limits_from_env({"TIER2_MEMORY_MB": "0"})) == 512


def test_tier_cpu_shares_env_override() -> None:
    assert tier_cpu_shares(4, tier_limits_from_env({"TIER4_CPU_SHARES": "8192"})) == 8192
    assert tier_cpu_shares(4, tier_limits_from_env({"TIER4_CPU_SHARES": "-1"})) == 4096


def test_tier1_is_sandboxed_read_only_with_tmpfs_and_no_caps() -> None:
    config = tier_host_config(1)
    assert config.read_only_rootfs is True
    assert dict(config.tmpfs) == {"/tmp": "rw,noexec,nosuid,size=64m"}
    assert config.config_mount_only is True
    assert (config.memory_bytes, config.nano_cpus) == (0, 0)
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
    config = tier_host_config(2, {3: TierLimits(1, 1)})
    assert (config.memory_bytes, config.nano_cpus) == (0, 0)
