"""Parsing of Docker's event messages, fed with messages captured from Docker Engine 20.10."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controller.docker.event_stream import CONTAINER_ACTIONS, parse_event

FIXTURES = Path(__file__).parent / "fixtures" / "docker"


def captured() -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = json.loads((FIXTURES / "events.json").read_text())
    return messages


def find(action: str, name: str) -> dict[str, Any]:
    for message in captured():
        if message["Action"] == action and message["Actor"]["Attributes"]["name"] == name:
            return message
    raise AssertionError(f"no {action} event for {name} in the fixture")


def test_die_after_kill_carries_exit_code_137() -> None:
    event = parse_event(find("die", "ws-fixture-killed"))
    assert event is not None
    assert event.kind == "die"
    assert event.exit_code == 137
    assert event.name == "ws-fixture-killed"
    assert len(event.container_id) == 64
    assert event.time == pytest.approx(find("die", "ws-fixture-killed")["timeNano"] / 1e9)


def test_die_of_a_crash_looping_agent_carries_its_exit_code() -> None:
    event = parse_event(find("die", "ws-fixture-restarting"))
    assert event is not None
    assert event.exit_code == 1


def test_health_status_carries_the_verdict() -> None:
    event = parse_event(find("health_status: healthy", "ws-fixture-running"))
    assert event is not None
    assert event.kind == "health_status"
    assert event.action == "health_status: healthy"
    assert event.health == "healthy"
    assert event.exit_code is None


def test_labels_are_the_containers_labels_without_docker_attributes() -> None:
    event = parse_event(find("start", "ws-fixture-running"))
    assert event is not None
    assert event.labels["molecule.platform.managed"] == "true"
    assert event.labels["workspace.example/name"] == "fixture"
    assert "name" not in event.labels
    assert "image" not in event.labels


def test_healthcheck_exec_events_are_ignored() -> None:
    exec_die = next(m for m in captured() if m["Action"] == "exec_die")
    assert parse_event(exec_die) is None


def test_every_captured_container_action_we_follow_parses() -> None:
    kinds = {e.kind for m in captured() if (e := parse_event(m)) is not None}
    assert kinds == {"create", "start", "die", "health_status", "pause", "unpause", "kill", "destroy"}
    assert kinds <= set(CONTAINER_ACTIONS)


@pytest.mark.parametrize(
    "odd",
    [
        {},
        {"Type": "network", "Action": "connect"},
        {"Type": "container", "Action": None},
        {"Type": "container", "Action": "die", "Actor": None},
        {"Type": "container", "Action": "die", "Actor": {"Attributes": {"exitCode": "x"}}},
    ],
)
def test_parser_is_total(odd: dict[str, Any]) -> None:
    event = parse_event(odd)
    assert event is None or (event.kind == "die" and event.exit_code is None and event.container_id == "")


def test_old_style_message_without_actor_still_parses() -> None:
    event = parse_event({"status": "stop", "id": "abc", "time": 1795778037})
    assert event is not None
    assert event.kind == "stop"
    assert event.container_id == "abc"
    assert event.time == 1795778037.0
