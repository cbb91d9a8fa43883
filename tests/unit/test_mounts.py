"""Bind mounts: the Go provisioner's /workspace matrix, the claude-code session volume, tiers 1 and 4."""

from __future__ import annotations

import pytest

from controller.core.mounts import (
    container_binds,
    uses_session_volume,
    uses_workspace_volume,
    workspace_mount,
)
from controller.core.tiers import tier_host_config

UID = "3f2a9c1e-8b7d-4e21-9a0f-123456789abc"
VOLUME = "ws-3f2a9c1e-8b7-workspace:/workspace"


@pytest.mark.parametrize(
    ("host_path", "access", "expected"),
    [
        (None, "", VOLUME),
        (None, "none", VOLUME),
        ("/home/u/proj", "", "/home/u/proj:/workspace"),
        ("/home/u/proj", "read_write", "/home/u/proj:/workspace"),
        ("/home/u/proj", "read_only", "/home/u/proj:/workspace:ro"),
        ("/home/u/proj", "none", VOLUME),
    ],
)
def test_workspace_mount_selection_matrix(host_path: str | None, access: str, expected: str) -> None:
    assert workspace_mount(UID, host_path, access) == expected


def test_access_without_path_degrades_to_the_named_volume() -> None:
    assert workspace_mount(UID, None, "read_only") == VOLUME


def test_tier2_binds_configs_then_workspace() -> None:
    binds = container_binds(UID, runtime="langgraph", tier=tier_host_config(2), host_path=None, access="none")
    assert binds == ("ws-3f2a9c1e-8b7-configs:/configs", VOLUME)


def test_claude_code_adds_the_session_volume_after_workspace() -> None:
    binds = container_binds(
        UID, runtime="claude-code", tier=tier_host_config(3), host_path=None, access="none"
    )
    assert binds[-1] == "ws-3f2a9c1e-8b7-claude-sessions:/root/.claude/sessions"
    assert len(binds) == 3


def test_tier1_keeps_only_the_configs_mount() -> None:
    tier = tier_host_config(1)
    binds = container_binds(UID, runtime="claude-code", tier=tier, host_path="/home/u", access="read_write")
    assert binds == ("ws-3f2a9c1e-8b7-configs:/configs",)
    assert not uses_session_volume("claude-code", tier)
    assert not uses_workspace_volume(None, "none", tier)


def test_tier4_appends_the_docker_socket_last_where_it_is_granted() -> None:
    binds = container_binds(
        UID,
        runtime="claude-code",
        tier=tier_host_config(4),
        host_path=None,
        access="none",
        docker_socket=True,
    )
    assert binds[-1] == "/var/run/docker.sock:/var/run/docker.sock"
    assert binds[-2].endswith(":/root/.claude/sessions")


def test_without_a_grant_no_tier_gets_the_docker_socket() -> None:
    for tier in (1, 2, 3, 4):
        binds = container_binds(
            UID, runtime="claude-code", tier=tier_host_config(tier), host_path=None, access="none"
        )
        assert "/var/run/docker.sock:/var/run/docker.sock" not in binds
    tier2 = container_binds(
        UID, runtime="langgraph", tier=tier_host_config(2), host_path=None, access="none", docker_socket=True
    )
    assert "/var/run/docker.sock:/var/run/docker.sock" not in tier2  # the grant is for tier 4 only


def test_host_directory_replaces_the_workspace_volume() -> None:
    tier = tier_host_config(2)
    binds = container_binds(UID, runtime="langgraph", tier=tier, host_path="/srv/p", access="read_only")
    assert binds[1] == "/srv/p:/workspace:ro"
    assert not uses_workspace_volume("/srv/p", "read_only", tier)
    assert uses_workspace_volume("/srv/p", "none", tier)
