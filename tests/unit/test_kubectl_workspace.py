"""kubectl workspace: what it prints and what it patches (the pure parts)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller.kubectl_workspace import COMMANDS, completions, request_patch, summary

WORKSPACE = {
    "metadata": {"namespace": "team-a", "name": "research"},
    "spec": {"runtime": "langgraph", "tier": 2},
    "status": {
        "phase": "Running",
        "workspaceID": "0b6c2f1e-aaaa",
        "host": "local",
        "endpoint": "http://127.0.0.1:32768",
        "internalURL": "http://ws-0b6c2f1e-aaa:8000",
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "ContainerRunning", "message": "ws is running"}
        ],
        "container": {
            "name": "ws-0b6c2f1e-aaa",
            "id": "3f2a1b9c8d7e6f5a",
            "state": "running",
            "health": "healthy",
        },
        "image": {"updateAvailable": "r/x@sha256:22"},
        "rollout": {"configHash": "abcdef0123456789", "startedAt": "2026-12-01T12:00:00Z"},
    },
}


def test_status_summary_says_what_a_user_asks_first() -> None:
    text = summary(WORKSPACE)
    assert "Workspace team-a/research  phase Running" in text
    assert "Ready       True    ContainerRunning" in text
    assert "ws-0b6c2f1e-aaa  3f2a1b9c8d7e  running (healthy)" in text
    assert "endpoint      http://127.0.0.1:32768   internal http://ws-0b6c2f1e-aaa:8000" in text
    assert "update        r/x@sha256:22" in text
    assert "rollout       abcdef012345 since 2026-12-01T12:00:00Z, not Ready yet" in text


def test_the_template_and_a_hibernation_are_summarised() -> None:
    text = summary(
        {
            "metadata": {"name": "sleepy", "namespace": "team-a"},
            "spec": {"templateRef": {"name": "agent"}},
            "status": {
                "phase": "Hibernated",
                "template": {"name": "agent", "generation": 3},
                "hibernation": {"hibernatedAt": "2026-12-01T12:00:00Z"},
            },
        }
    )
    assert "template      agent (generation 3)" in text
    assert "hibernated    since 2026-12-01T12:00:00Z (kubectl workspace wake sleepy)" in text


def test_a_workspace_without_status_is_summarised_too() -> None:
    assert "phase -" in summary({"metadata": {"name": "new"}, "spec": {}})


@pytest.mark.parametrize(
    ("command", "spec"),
    [
        ("restart", {"restartRequestedAt": "2026-12-01T12:00:00Z"}),
        ("reset-session", {"session": {"resetRequestedAt": "2026-12-01T12:00:00Z"}}),
        ("suspend", {"suspend": True}),
        ("resume", {"suspend": False}),
        ("wake", {"wakeRequestedAt": "2026-12-01T12:00:00Z"}),
    ],
)
def test_requests_are_spec_patches(command: str, spec: dict[str, object]) -> None:
    assert request_patch(command, datetime(2026, 12, 1, 12, tzinfo=UTC)) == {"spec": spec}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([""], list(COMMANDS)),
        (["re"], ["restart", "reset-session", "resume"]),
        (["logs", ""], ["alpha", "beta"]),
        (["-n", "team-a", "status", "b"], ["beta"]),
        (["status", "alpha", ""], []),
        (["nonsense", ""], []),
    ],
)
def test_completion(args: list[str], expected: list[str]) -> None:
    assert completions(args, ["alpha", "beta"]) == expected
