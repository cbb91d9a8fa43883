"""Names of a workspace's Docker objects (the Go provisioner's, except the workspace volume)."""

from __future__ import annotations

import pytest

from controller.core.naming import (
    auth_token_secret_name,
    config_volume_name,
    container_name,
    endpoint_url,
    host_network_endpoint,
    internal_url,
    session_volume_name,
    short_id,
    workspace_volume_name,
)

UID = "3f2a9c1e-8b7d-4e21-9a0f-123456789abc"


@pytest.mark.parametrize(
    ("workspace_id", "expected"),
    [
        ("short", "ws-short"),
        ("exactly12ch", "ws-exactly12ch"),
        ("longer-than-twelve-characters", "ws-longer-than-"),
    ],
)
def test_container_name_truncates_the_id_to_twelve_characters(workspace_id: str, expected: str) -> None:
    assert container_name(workspace_id) == expected


def test_config_volume_name() -> None:
    assert config_volume_name(UID) == "ws-3f2a9c1e-8b7-configs"
    assert config_volume_name("short") == "ws-short-configs"


def test_session_volume_name_is_deterministic_and_distinct_from_config() -> None:
    assert session_volume_name(UID) == session_volume_name(UID) == "ws-3f2a9c1e-8b7-claude-sessions"
    assert session_volume_name(UID) != config_volume_name(UID)


def test_workspace_volume_is_truncated_like_its_siblings_not_full_id() -> None:
    # The Go provisioner used the full ID here; the controller keeps every name on the 12-character prefix.
    assert workspace_volume_name(UID) == "ws-3f2a9c1e-8b7-workspace"
    assert UID not in workspace_volume_name(UID)


def test_internal_url_uses_the_network_alias_and_agent_port() -> None:
    assert internal_url(UID) == "http://ws-3f2a9c1e-8b7:8000"
    assert short_id(UID) == UID[:12]


@pytest.mark.parametrize(
    ("host_ip", "port", "expected"),
    [
        ("127.0.0.1", "49153", "http://127.0.0.1:49153"),
        ("", "49153", "http://127.0.0.1:49153"),
        ("0.0.0.0", 32768, "http://127.0.0.1:32768"),
        ("::1", "80", "http://[::1]:80"),
    ],
)
def test_endpoint_url_from_a_port_binding(host_ip: str, port: str | int, expected: str) -> None:
    assert endpoint_url(host_ip, port) == expected


def test_host_network_endpoint_is_loopback_8000() -> None:
    assert host_network_endpoint() == "http://127.0.0.1:8000"


def test_auth_token_secret_name() -> None:
    assert auth_token_secret_name("alice") == "alice-auth-token"
