"""Controller settings from the environment: the Go provisioner's variables keep its rules."""

from __future__ import annotations

import re

import pytest

from controller.core.tiers import TierLimits
from controller.settings import KNOWN_RUNTIMES, ControllerSettings, tier_limits_from_env

ECR = "123456789012.dkr.ecr.us-east-2.amazonaws.com/molecule-ai"


def test_defaults_with_an_empty_environment() -> None:
    s = ControllerSettings.from_env({})
    assert s.registry_prefix == "ghcr.io/molecule-ai"
    assert s.image_platform == ""
    assert s.network == "molecule-monorepo-net"
    assert s.platform_url == "http://host.docker.internal:8080"
    assert s.instance == "default"
    assert (s.resync_seconds, s.docker_timeout_seconds, s.docker_concurrency) == (30, 30, 4)
    assert (s.sweep_interval_seconds, s.sweep_grace_seconds, s.sweep_dry_run) == (60, 300, False)
    assert (s.crashloop_restarts, s.crashloop_window_seconds) == (5, 300)
    assert s.known_runtimes == KNOWN_RUNTIMES
    assert s.docker_host is None
    assert (s.metrics_addr, s.metrics_port) == ("127.0.0.1", 8080)
    assert s.liveness == "http://127.0.0.1:8081/healthz"
    assert (s.log_format, s.log_level) == ("text", "INFO")
    assert dict(s.tier_limits) == {
        1: TierLimits(memory_mb=256, cpu_shares=512, pids_limit=256),
        2: TierLimits(memory_mb=512, cpu_shares=1024, pids_limit=1024),
        3: TierLimits(memory_mb=2048, cpu_shares=2048, pids_limit=4096),
        4: TierLimits(memory_mb=4096, cpu_shares=4096, pids_limit=8192),
    }


def test_registry_prefix_defaults_to_ghcr() -> None:
    assert ControllerSettings.from_env({}).registry_prefix == "ghcr.io/molecule-ai"


def test_registry_prefix_respects_env() -> None:
    assert ControllerSettings.from_env({"MOLECULE_IMAGE_REGISTRY": ECR}).registry_prefix == ECR


def test_registry_prefix_empty_env_falls_back_to_default() -> None:
    assert (
        ControllerSettings.from_env({"MOLECULE_IMAGE_REGISTRY": ""}).registry_prefix == "ghcr.io/molecule-ai"
    )


def test_known_runtimes_are_the_go_provisioners_nine_in_alphabetical_order() -> None:
    assert len(KNOWN_RUNTIMES) == 9
    assert list(KNOWN_RUNTIMES) == sorted(KNOWN_RUNTIMES)
    assert "codex" in KNOWN_RUNTIMES


def test_image_platform_explicit_value_is_used() -> None:
    assert (
        ControllerSettings.from_env({"MOLECULE_IMAGE_PLATFORM": "linux/arm64"}).image_platform
        == "linux/arm64"
    )


def test_image_platform_set_but_empty_means_no_preference() -> None:
    assert ControllerSettings.from_env({"MOLECULE_IMAGE_PLATFORM": ""}).image_platform == ""


def test_platform_url_network_and_instance_from_env() -> None:
    s = ControllerSettings.from_env(
        {"PLATFORM_URL": "http://platform:8080", "MOLECULE_NETWORK": "net2", "WC_INSTANCE": "prod-1"}
    )
    assert (s.platform_url, s.network, s.instance) == ("http://platform:8080", "net2", "prod-1")


@pytest.mark.parametrize("instance", ["-x", "a b", "x" * 64, "x/y"])
def test_instance_must_be_usable_as_a_label_value(instance: str) -> None:
    with pytest.raises(ValueError, match="WC_INSTANCE"):
        ControllerSettings.from_env({"WC_INSTANCE": instance})


def test_tier_overrides_replace_the_defaults() -> None:
    limits = tier_limits_from_env(
        {"TIER3_MEMORY_MB": "8192", "TIER3_CPU_SHARES": "4096", "TIER2_MEMORY_MB": "+64"}
    )
    assert limits[3] == TierLimits(memory_mb=8192, cpu_shares=4096, pids_limit=4096)
    assert limits[2] == TierLimits(memory_mb=64, cpu_shares=1024, pids_limit=1024)
    assert limits[4] == TierLimits(memory_mb=4096, cpu_shares=4096, pids_limit=8192)


@pytest.mark.parametrize("raw", ["not-a-number", "0", "-5", "", " 5", "1_000", "1.5", str(2**63)])
def test_tier_override_that_is_not_a_positive_int64_keeps_the_default(raw: str) -> None:
    limits = tier_limits_from_env(
        {
            "TIER2_MEMORY_MB": raw,
            "TIER4_CPU_SHARES": raw,
            "TIER1_MEMORY_MB": raw,
            "TIER1_CPU_SHARES": raw,
            "TIER1_PIDS_LIMIT": raw,
            "TIER3_PIDS_LIMIT": raw,
        }
    )
    assert limits[2].memory_mb == 512
    assert limits[4].cpu_shares == 4096
    assert limits[1] == TierLimits(memory_mb=256, cpu_shares=512, pids_limit=256)
    assert limits[3].pids_limit == 4096


def test_tier_one_memory_and_cpu_and_every_tiers_pids_limit_are_settings() -> None:
    s = ControllerSettings.from_env(
        {
            "TIER1_MEMORY_MB": "100",
            "TIER1_CPU_SHARES": "256",
            "TIER1_PIDS_LIMIT": "32",
            "TIER2_PIDS_LIMIT": "512",
            "TIER3_PIDS_LIMIT": "9000",
            "TIER4_PIDS_LIMIT": str(2**63 - 1),
        }
    )
    assert s.tier_limits[1] == TierLimits(memory_mb=100, cpu_shares=256, pids_limit=32)
    assert [s.tier_limits[tier].pids_limit for tier in (2, 3, 4)] == [512, 9000, 2**63 - 1]
    assert (s.tier_limits[2].memory_mb, s.tier_limits[2].cpu_shares) == (512, 1024)


def test_controller_numbers_are_read_from_wc_variables() -> None:
    s = ControllerSettings.from_env(
        {
            "WC_RESYNC_SECONDS": "10",
            "WC_DOCKER_TIMEOUT": "5",
            "WC_DOCKER_CONCURRENCY": "8",
            "WC_SWEEP_INTERVAL": "120",
            "WC_SWEEP_GRACE": "0",
            "WC_SWEEP_DRY_RUN": "true",
            "WC_CRASHLOOP_RESTARTS": "3",
            "WC_CRASHLOOP_WINDOW": "60",
        }
    )
    assert (s.resync_seconds, s.docker_timeout_seconds, s.docker_concurrency) == (10, 5, 8)
    assert (s.sweep_interval_seconds, s.sweep_grace_seconds, s.sweep_dry_run) == (120, 0, True)
    assert (s.crashloop_restarts, s.crashloop_window_seconds) == (3, 60)


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("WC_RESYNC_SECONDS", "soon"),
        ("WC_RESYNC_SECONDS", "0"),
        ("WC_DOCKER_TIMEOUT", "1.5"),
        ("WC_DOCKER_CONCURRENCY", "0"),
        ("WC_SWEEP_INTERVAL", "-1"),
        ("WC_SWEEP_GRACE", "-1"),
        ("WC_CRASHLOOP_RESTARTS", "many"),
        ("WC_CRASHLOOP_WINDOW", "0"),
        ("WC_SWEEP_DRY_RUN", "maybe"),
        ("WC_METRICS_PORT", "-1"),
        ("WC_METRICS_PORT", "http"),
        ("WC_LOG_FORMAT", "xml"),
        ("WC_LOG_LEVEL", "verbose"),
    ],
)
def test_malformed_wc_variable_stops_start_up_with_its_name(name: str, raw: str) -> None:
    with pytest.raises(ValueError, match=name):
        ControllerSettings.from_env({name: raw})


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("YES", True), ("off", False), ("", False)])
def test_sweep_dry_run_accepts_common_booleans(raw: str, expected: bool) -> None:
    assert ControllerSettings.from_env({"WC_SWEEP_DRY_RUN": raw}).sweep_dry_run is expected


def test_docker_host_metrics_liveness_and_logging_from_env() -> None:
    s = ControllerSettings.from_env(
        {
            "DOCKER_HOST": "tcp://docker.internal:2376",
            "WC_METRICS_PORT": "9090",
            "WC_METRICS_ADDR": "0.0.0.0",
            "WC_LIVENESS": "http://0.0.0.0:9091/healthz",
            "WC_LOG_FORMAT": "json",
            "WC_LOG_LEVEL": "WARNING",
        }
    )
    assert s.docker_host == "tcp://docker.internal:2376"
    assert (s.metrics_addr, s.metrics_port) == ("0.0.0.0", 9090)
    assert s.liveness == "http://0.0.0.0:9091/healthz"
    assert (s.log_format, s.log_level) == ("json", "WARNING")


def test_empty_docker_host_and_metrics_addr_mean_the_defaults() -> None:
    s = ControllerSettings.from_env({"DOCKER_HOST": "", "WC_METRICS_ADDR": "", "WC_METRICS_PORT": ""})
    assert s.docker_host is None
    assert (s.metrics_addr, s.metrics_port) == ("127.0.0.1", 8080)


def test_metrics_port_zero_is_accepted_to_turn_metrics_off() -> None:
    assert ControllerSettings.from_env({"WC_METRICS_PORT": "0"}).metrics_port == 0


def test_liveness_set_but_empty_disables_it() -> None:
    assert ControllerSettings.from_env({"WC_LIVENESS": ""}).liveness == ""


@pytest.mark.parametrize(("raw", "expected"), [("debug", "DEBUG"), (" Error ", "ERROR"), ("", "INFO")])
def test_log_level_is_upper_cased(raw: str, expected: str) -> None:
    assert ControllerSettings.from_env({"WC_LOG_LEVEL": raw}).log_level == expected


@pytest.mark.parametrize(("raw", "expected"), [("text", "text"), ("json", "json"), ("", "text")])
def test_log_format_is_text_or_json(raw: str, expected: str) -> None:
    assert ControllerSettings.from_env({"WC_LOG_FORMAT": raw}).log_format == expected


def test_settings_are_immutable() -> None:
    s = ControllerSettings.from_env({})
    with pytest.raises(ValueError, match="frozen"):
        s.network = "other"  # type: ignore[misc]


def test_leader_election_is_off_by_default_and_named_after_the_instance() -> None:
    settings = ControllerSettings.from_env({"WC_INSTANCE": "East_1", "HOSTNAME": "x"})
    assert settings.leader_elect is False
    assert settings.lease_name == "workspace-controller-east-1"
    assert settings.lease_namespace == "default"
    assert settings.identity  # host name and pid
    assert (settings.lease_duration_seconds, settings.renew_deadline_seconds) == (15, 10.0)
    assert settings.retry_period_seconds == 2.0


def test_leader_election_reads_the_pod_it_runs_in_and_its_timing() -> None:
    settings = ControllerSettings.from_env(
        {
            "WC_LEADER_ELECT": "true",
            "POD_NAME": "workspace-controller-7d9-abc",
            "POD_NAMESPACE": "workspace-controller",
            "WC_LEASE_DURATION": "4",
            "WC_RENEW_DEADLINE": "3",
            "WC_RETRY_PERIOD": "0.5",
        }
    )
    assert settings.leader_elect is True
    assert (settings.identity, settings.lease_namespace) == (
        "workspace-controller-7d9-abc",
        "workspace-controller",
    )
    assert (
        settings.lease_duration_seconds,
        settings.renew_deadline_seconds,
        settings.retry_period_seconds,
    ) == (
        4,
        3.0,
        0.5,
    )
    explicit = ControllerSettings.from_env(
        {"WC_IDENTITY": "me", "POD_NAME": "pod", "WC_LEASE_NAME": "mine", "WC_LEASE_NAMESPACE": "ops"}
    )
    assert (explicit.identity, explicit.lease_name, explicit.lease_namespace) == ("me", "mine", "ops")


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"WC_RENEW_DEADLINE": "20"}, "WC_RETRY_PERIOD < WC_RENEW_DEADLINE < WC_LEASE_DURATION"),
        ({"WC_RETRY_PERIOD": "10"}, "WC_RETRY_PERIOD < WC_RENEW_DEADLINE < WC_LEASE_DURATION"),
        ({"WC_RETRY_PERIOD": "nan"}, "WC_RETRY_PERIOD must be a number of seconds above 0"),
        ({"WC_RENEW_DEADLINE": "-1"}, "WC_RENEW_DEADLINE must be a number of seconds above 0"),
        ({"WC_LEASE_DURATION": "1.5"}, "WC_LEASE_DURATION must be an integer"),
        ({"WC_LEASE_NAME": "Not_A_Name"}, "WC_LEASE_NAME must be a Lease name"),
    ],
)
def test_malformed_leader_election_settings_stop_start_up(env: dict[str, str], says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        ControllerSettings.from_env({"WC_LEADER_ELECT": "1", **env})


def test_shard_selectors_are_read_in_kubectl_syntax() -> None:
    settings = ControllerSettings.from_env(
        {"WC_HOST_SELECTOR": "shard=east,zone in (a,b)", "WC_WORKSPACE_SELECTOR": "shard=east"}
    )
    assert settings.host_selector is not None
    assert settings.host_selector.match_labels == {"shard": "east"}
    assert settings.workspace_selector is not None
    assert settings.workspace_selector.match_labels == {"shard": "east"}
    assert ControllerSettings.from_env({"WC_HOST_SELECTOR": "  "}).host_selector is None


def test_a_malformed_shard_selector_stops_start_up_with_its_name() -> None:
    with pytest.raises(
        ValueError, match=re.escape("WC_WORKSPACE_SELECTOR: selector 'shard in (east' has an unmatched")
    ):
        ControllerSettings.from_env({"WC_WORKSPACE_SELECTOR": "shard in (east"})


def test_an_admin_adds_runtimes_and_maps_images_without_a_release() -> None:
    settings = ControllerSettings.from_env(
        {
            "WC_RUNTIMES": "external, research-bot",
            "WC_RUNTIME_IMAGES": "hermes=reg.example/hermes:2, beta=reg.example/b@sha256:" + "a" * 64,
        }
    )
    assert {"external", "research-bot", "beta", *KNOWN_RUNTIMES} == set(settings.known_runtimes)
    assert list(settings.known_runtimes) == sorted(settings.known_runtimes)
    assert settings.runtime_images == {
        "hermes": "reg.example/hermes:2",
        "beta": "reg.example/b@sha256:" + "a" * 64,
    }


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"WC_RUNTIMES": "Bad_Name"}, "WC_RUNTIMES: 'Bad_Name' is not a runtime name"),
        ({"WC_RUNTIME_IMAGES": "hermes"}, "WC_RUNTIME_IMAGES: 'hermes' is not runtime=image"),
        ({"WC_RUNTIME_IMAGES": "hermes="}, "WC_RUNTIME_IMAGES: 'hermes=' is not runtime=image"),
        ({"WC_RUNTIME_IMAGES": "x=a b"}, "WC_RUNTIME_IMAGES: 'x=a b' is not runtime=image"),
        ({"WC_RUNTIME_IMAGES": "UP=img"}, "WC_RUNTIME_IMAGES: 'UP' is not a runtime name"),
    ],
)
def test_a_malformed_runtime_setting_stops_start_up(env: dict[str, str], says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        ControllerSettings.from_env(env)


def test_an_unpaired_runtime_image_entry_is_refused() -> None:
    with pytest.raises(ValueError, match="'' is not a runtime name"):
        ControllerSettings.from_env({"WC_RUNTIME_IMAGES": "=img"})
