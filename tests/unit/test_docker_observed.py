"""Parsers of Docker's list and inspect JSON, fed with answers captured from Docker Engine 20.10.

The fixtures hold seven containers from the test agent image: created (never started), running and
healthy, running with its healthcheck still starting, paused, exited with code 3, killed (137), and
crash-looping under `unless-stopped` (restarting). Their agent port is published on 127.0.0.1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from controller.docker.parse import (
    ObservedNetwork,
    canonical_network,
    parse_container_inspect,
    parse_container_list_entry,
    parse_image,
    parse_network,
    parse_timestamp,
    parse_volume,
)
from controller.port.values import ObservedImage, ObservedVolume

FIXTURES = Path(__file__).parent / "fixtures" / "docker"
IMAGE = "127.0.0.1:5391/molecule-ai/workspace-template-langgraph:latest"
IMAGE_ID = "sha256:4cedfeb8f5086f3fcc856c50287736b723b9e84d318bf6717c1bc5423206f185"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def listed() -> dict[str, dict[str, Any]]:
    return {entry["Names"][0].lstrip("/"): entry for entry in load("containers_list.json")}


def inspected() -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = load("containers_inspect.json")
    return result


# name -> (state, health, exit_code, has host port)
EXPECTED = {
    "ws-fixture-created": ("created", None, None, False),
    "ws-fixture-running": ("running", "healthy", None, True),
    "ws-fixture-starting": ("running", "starting", None, True),
    "ws-fixture-paused": ("paused", None, None, True),
    "ws-fixture-exited": ("exited", None, 3, False),
    "ws-fixture-killed": ("exited", None, 137, False),
    "ws-fixture-restarting": ("restarting", None, 1, False),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_list_entry_and_inspect_agree_on_what_both_can_see(name: str) -> None:
    from_list = parse_container_list_entry(listed()[name])
    from_inspect = parse_container_inspect(inspected()[name])
    state, health, exit_code, published = EXPECTED[name]
    for observed in (from_list, from_inspect):
        assert observed.name == name
        assert observed.state == state
        assert observed.health == health
        assert observed.exit_code == exit_code
        assert (observed.host_port is not None) == published
        assert observed.image == IMAGE
        assert observed.image_id == IMAGE_ID
        assert observed.labels["molecule.platform.managed"] == "true"
        assert observed.labels["workspace.example/name"] == "fixture"
    assert from_list.id == from_inspect.id
    assert len(from_list.id) == 64
    assert from_list.host_port == from_inspect.host_port


def test_list_entry_says_it_lacks_detail() -> None:
    running = parse_container_list_entry(listed()["ws-fixture-running"])
    assert running.detail is False
    assert running.restart_count is None
    assert running.oom_killed is None
    assert running.started_at is None
    assert running.finished_at is None
    assert running.host_port == 32791
    assert running.created == 1795778037.0


def test_inspect_fills_the_detail() -> None:
    running = parse_container_inspect(inspected()["ws-fixture-running"])
    assert running.detail is True
    assert running.restart_count == 0
    assert running.oom_killed is False
    assert running.started_at == datetime(2026, 11, 27, 11, 13, 57, 394301, tzinfo=UTC)
    assert running.finished_at is None  # "0001-01-01T00:00:00Z" means never
    assert running.created == pytest.approx(
        datetime(2026, 11, 27, 11, 13, 57, 143380, tzinfo=UTC).timestamp()
    )
    assert running.running


def test_inspect_of_a_crash_loop_counts_restarts() -> None:
    looping = parse_container_inspect(inspected()["ws-fixture-restarting"])
    # Docker says Running=true while it waits to restart; the state is what tells the truth.
    assert inspected()["ws-fixture-restarting"]["State"]["Running"] is True
    assert looping.state == "restarting"
    assert not looping.running
    assert looping.restart_count == 7
    assert looping.exit_code == 1


def test_stale_health_of_a_stopped_container_is_not_reported() -> None:
    # Docker keeps "unhealthy" on an exited container; that is not a verdict about a running agent.
    assert inspected()["ws-fixture-exited"]["State"]["Health"]["Status"] == "unhealthy"
    assert parse_container_inspect(inspected()["ws-fixture-exited"]).health is None


def test_created_container_has_no_start_time_and_no_exit_code() -> None:
    created = parse_container_inspect(inspected()["ws-fixture-created"])
    assert created.started_at is None
    assert created.exit_code is None
    assert created.host_port is None  # ports are bound at start


@pytest.mark.parametrize(
    ("broken", "state"),
    [
        ({}, "unknown"),
        (
            {"Id": None, "Names": None, "Labels": None, "Ports": None, "State": None, "Status": None},
            "unknown",
        ),
        (
            {"Names": [], "Ports": [{"PrivatePort": "8000"}], "Created": "yesterday", "Labels": ["a"]},
            "unknown",
        ),
        ({"Ports": [None, 5, {"PrivatePort": 8000, "PublicPort": None}], "Status": "Exited ("}, "exited"),
        ({"State": "sleeping", "Status": 42}, "unknown"),
    ],
)
def test_list_parser_is_total(broken: dict[str, Any], state: str) -> None:
    observed = parse_container_list_entry(broken)
    assert observed.id == ""
    assert observed.state == state
    assert observed.created is None
    assert observed.host_port is None
    assert observed.exit_code is None
    assert dict(observed.labels) == {}


@pytest.mark.parametrize(
    "broken",
    [
        {},
        {"State": None, "Config": None, "NetworkSettings": None, "Created": ""},
        {"State": {"Status": "running", "Health": "yes", "ExitCode": "x", "StartedAt": "2026"}},
        {"State": {"Status": "exited", "ExitCode": None}, "NetworkSettings": {"Ports": {"8000/tcp": None}}},
        {"Created": "0001-01-01T00:00:00Z", "RestartCount": "many", "Name": 7},
    ],
)
def test_inspect_parser_is_total(broken: dict[str, Any]) -> None:
    observed = parse_container_inspect(broken)
    assert observed.detail is True
    assert observed.health is None
    assert observed.exit_code is None
    assert observed.host_port is None
    assert observed.created is None
    assert observed.restart_count is None


def test_status_text_alone_gives_state_exit_code_and_health_for_older_engines() -> None:
    assert parse_container_list_entry({"Status": "Exited (137) 2 seconds ago"}).state == "exited"
    assert parse_container_list_entry({"Status": "Exited (137) 2 seconds ago"}).exit_code == 137
    assert parse_container_list_entry({"Status": "Restarting (1) 1 second ago"}).exit_code == 1
    assert parse_container_list_entry({"Status": "Up 3 minutes (healthy)"}).health == "healthy"
    assert parse_container_list_entry({"Status": "Up 3 minutes (unhealthy)"}).health == "unhealthy"
    assert parse_container_list_entry({"Status": "Up 5 seconds (Paused)"}).state == "paused"
    assert parse_container_list_entry({"Status": "Removal In Progress"}).state == "removing"


def test_host_port_prefers_loopback_and_ignores_other_ports_and_ipv6() -> None:
    entry = {
        "Ports": [
            {"IP": "::", "PrivatePort": 8000, "PublicPort": 40001, "Type": "tcp"},
            {"IP": "127.0.0.1", "PrivatePort": 9000, "PublicPort": 40002, "Type": "tcp"},
            {"IP": "127.0.0.1", "PrivatePort": 8000, "PublicPort": 40003, "Type": "udp"},
            {"IP": "127.0.0.1", "PrivatePort": 8000, "PublicPort": 40004, "Type": "tcp"},
        ]
    }
    assert parse_container_list_entry(entry).host_port == 40004
    assert parse_container_list_entry(entry, agent_port=9000).host_port == 40002
    only_v6 = {"Ports": [{"IP": "::", "PrivatePort": 8000, "PublicPort": 40001, "Type": "tcp"}]}
    assert parse_container_list_entry(only_v6).host_port is None


def test_labels_are_read_only() -> None:
    observed = parse_container_list_entry(listed()["ws-fixture-running"])
    with pytest.raises(TypeError):
        observed.labels["x"] = "y"  # type: ignore[index]


def test_volumes_keep_labels_and_show_unlabelled_ones_as_such() -> None:
    volumes = [parse_volume(v) for v in load("volumes_list.json")["Volumes"]]
    by_name = {v.name: v for v in volumes}
    ours = by_name["ws-fixture-labelled-configs"]
    assert ours.carries({"molecule.platform.managed": "true"})
    assert ours.driver == "local"
    assert ours.created == datetime(2026, 11, 27, 11, 14, 15, tzinfo=UTC).timestamp()
    # Created implicitly by a bind mount: no labels at all (seed bug B6 starts this way).
    implicit = by_name["ws-fixture-starting-configs"]
    assert dict(implicit.labels) == {}
    assert not implicit.carries({"molecule.platform.managed": "true"})
    assert implicit.carries({})


def test_volume_parser_is_total() -> None:
    assert parse_volume({}) == ObservedVolume(name="")
    assert parse_volume({"Labels": {"a": None}, "CreatedAt": 5}).labels["a"] == ""


def test_image_keeps_its_id_repo_digests_and_tags() -> None:
    digest = f"{IMAGE.rsplit(':', 1)[0]}@sha256:" + "1" * 64
    image = parse_image({"Id": IMAGE_ID, "RepoTags": [IMAGE], "RepoDigests": [digest]})
    assert image == ObservedImage(id=IMAGE_ID, repo_digests=(digest,), repo_tags=(IMAGE,))
    untagged = parse_image({"Id": IMAGE_ID, "RepoTags": ["<none>:<none>"], "RepoDigests": [digest]})
    assert untagged == ObservedImage(id=IMAGE_ID, repo_digests=(digest,))


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ({}, None),
        ({"Id": None, "RepoDigests": ["x@sha256:1"]}, None),
        ({"Id": "sha256:a", "RepoDigests": None}, ObservedImage(id="sha256:a")),
        (
            {"Id": "sha256:a", "RepoDigests": [None, 5, "x@sha256:1"]},
            ObservedImage("sha256:a", ("x@sha256:1",)),
        ),
    ],
)
def test_image_parser_is_total(broken: dict[str, Any], expected: ObservedImage | None) -> None:
    assert parse_image(broken) == expected


def test_canonical_network_is_the_oldest_of_exact_name_matches() -> None:
    nets = [
        parse_network({"Id": "b" * 64, "Name": "molecule-net", "Created": "2026-11-27T11:07:45.35Z"}),
        parse_network({"Id": "a" * 64, "Name": "molecule-net", "Created": "2026-11-27T11:07:46Z"}),
        parse_network({"Id": "0" * 64, "Name": "my-molecule-net", "Created": "2020-01-01T00:00:00Z"}),
    ]
    winner = canonical_network(nets, "molecule-net")
    assert winner is not None
    assert winner.id == "b" * 64
    assert canonical_network(nets, "molecule") is None


def test_canonical_network_breaks_ties_by_id() -> None:
    same_time = [
        ObservedNetwork(id="c", name="n", created=1.0),
        ObservedNetwork(id="a", name="n", created=1.0),
    ]
    winner = canonical_network(same_time, "n")
    assert winner is not None
    assert winner.id == "a"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T11:08:03.228904845Z", datetime(2026, 11, 27, 11, 8, 3, 228904, tzinfo=UTC)),
        ("2026-11-27T11:08:37Z", datetime(2026, 11, 27, 11, 8, 37, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        ("2026", None),
        ("garbage", None),
        (None, None),
        (12, None),
    ],
)
def test_parse_timestamp(text: object, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected
