"""A restarted controller confirms a container from the list when the status it finds describes that
very run; otherwise it inspects. Fed with a list entry and an inspect captured from Docker Engine 20.10
(the list was taken about 8 s after the container started: "Up 8 seconds (healthy)")."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.api.workspace import ContainerStatus
from controller.core.list_confirmation import CLOCK_SLACK, confirmed
from controller.core.status import container_status
from controller.docker.parse import parse_container_inspect, parse_container_list_entry
from controller.port.values import ObservedContainer

FIXTURES = Path(__file__).parent / "fixtures" / "docker"
NAME = "ws-fixture-running"


def fixture(kind: str, name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / f"containers_{kind}.json").read_text())
    if kind == "list":
        return next(entry for entry in data if entry["Names"] == [f"/{name}"])
    entry: dict[str, Any] = data[name]
    return entry


INSPECTED = parse_container_inspect(fixture("inspect", NAME))
LISTED = parse_container_list_entry(fixture("list", NAME))


def started_at(container: ObservedContainer) -> datetime:
    assert container.started_at is not None
    return container.started_at


STARTED = started_at(INSPECTED)
LISTED_AT = (STARTED + timedelta(seconds=8.5)).timestamp()


def recorded(**changes: Any) -> ContainerStatus:
    """What the last controller wrote after inspecting it (restarted twice, last run ended with 137)."""
    container = dataclasses.replace(INSPECTED, restart_count=2, exit_code=137)
    status = container_status(container, digest=None)
    assert status is not None
    return status.model_copy(update=changes)


def test_the_listed_run_the_status_describes_is_confirmed_with_the_statuss_facts() -> None:
    assert LISTED.uptime == (8.0, 9.0)
    found = confirmed(LISTED, recorded(), LISTED_AT)
    assert found is not None
    assert found.detail
    assert (found.restart_count, found.exit_code, found.oom_killed) == (2, 137, False)
    # The status written from it is the one already stored: nothing to write.
    assert container_status(found, digest=None) == recorded()


@pytest.mark.parametrize("skew", [-CLOCK_SLACK + 0.5, 0.0, CLOCK_SLACK - 0.5])
def test_clocks_that_disagree_by_a_few_seconds_still_confirm(skew: float) -> None:
    assert confirmed(LISTED, recorded(), LISTED_AT + skew) is not None


def test_a_container_that_started_again_since_the_status_was_written_is_inspected() -> None:
    # The status says it started a minute before the list; the list says it has run for 8 s.
    earlier = (STARTED - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert confirmed(LISTED, recorded(started_at=earlier), LISTED_AT) is None


@pytest.mark.parametrize(
    "changes",
    [
        {"id": "f" * 64},  # another container under the name
        {"health": "starting"},  # a verdict changed while nobody watched
        {"state": "exited"},
        {"config_hash": "another"},
        {"image": "127.0.0.1:5391/molecule-ai/workspace-template-langgraph@sha256:" + "0" * 64},
        {"name": "ws-someone-else"},
        {"started_at": None},
        {"started_at": "yesterday"},
        {"restart_count": None},
    ],
)
def test_any_other_difference_leaves_it_to_an_inspect(changes: dict[str, Any]) -> None:
    assert confirmed(LISTED, recorded(**changes), LISTED_AT) is None


def test_without_a_status_or_for_a_container_not_running_nothing_is_confirmed() -> None:
    assert confirmed(LISTED, None, LISTED_AT) is None
    paused = parse_container_list_entry(fixture("list", "ws-fixture-paused"))
    assert paused.uptime is None
    assert confirmed(paused, recorded(), LISTED_AT) is None
    assert confirmed(INSPECTED, recorded(), LISTED_AT) is None  # already in detail: nothing to vouch for


def test_a_list_entry_without_a_known_uptime_wording_is_not_confirmed() -> None:
    odd: ObservedContainer = dataclasses.replace(LISTED, uptime=None)
    assert confirmed(odd, recorded(), LISTED_AT) is None


def test_started_at_is_read_as_utc() -> None:
    found = confirmed(LISTED, recorded(), LISTED_AT)
    assert found is not None
    assert found.started_at == STARTED.replace(microsecond=0)
    assert found.started_at.utcoffset() == datetime.now(UTC).utcoffset()
