"""The observer: one list per resync for everyone, inspect only on news, and how the last run ended.

Containers are parsed from inspect answers captured from Docker Engine 20.10 (tests/unit/fixtures); the
Docker side is a small stand-in that counts calls, since what is pinned here is when the observer asks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from controller.docker.adapter import DockerAdapter
from controller.docker.events import DockerEvent
from controller.docker.observed import ObservedContainer, parse_container_inspect
from controller.observer import Observer, with_last_exit

FIXTURES = Path(__file__).parent / "fixtures" / "docker"


def inspected(name: str) -> ObservedContainer:
    data: dict[str, Any] = json.loads((FIXTURES / "containers_inspect.json").read_text())[name]
    return parse_container_inspect(data)


RUNNING = inspected("ws-fixture-running")
RESTARTING = inspected("ws-fixture-restarting")


class Docker:
    """Answers list and inspect from `containers`, counting the calls."""

    def __init__(self, *containers: ObservedContainer) -> None:
        self.containers = {c.name: c for c in containers}
        self.lists = 0
        self.inspects = 0

    async def list_containers(self, labels: Mapping[str, str]) -> list[ObservedContainer]:
        self.lists += 1
        return list(self.containers.values())

    async def inspect_container(self, name: str) -> ObservedContainer | None:
        self.inspects += 1
        return self.containers.get(name)


def observer(docker: Docker) -> Observer:
    return Observer(cast(DockerAdapter, docker), "default")


def die(container: ObservedContainer, exit_code: int) -> DockerEvent:
    return DockerEvent(kind="die", container_id=container.id, name=container.name, exit_code=exit_code)


def test_a_running_container_reports_the_exit_code_of_its_last_run() -> None:
    assert RUNNING.exit_code is None  # Docker says 0 once it runs again; the parser says "none"
    assert with_last_exit(RUNNING, 137).exit_code == 137
    assert with_last_exit(RUNNING, None).exit_code is None


def test_what_inspect_says_about_a_dead_container_wins_over_older_events() -> None:
    assert RESTARTING.exit_code == 1
    assert with_last_exit(RESTARTING, 137).exit_code == 1


def test_a_die_event_is_remembered_for_that_container_until_it_is_destroyed() -> None:
    docker = Docker(RUNNING)
    watcher = observer(docker)
    other = dataclasses.replace(RUNNING, id="f" * 64)

    watcher.note_event(die(RUNNING, 137))
    watcher.note_event(die(other, 3))
    seen = asyncio.run(watcher.observe(RUNNING.name, fresh=True))
    assert seen is not None
    assert seen.exit_code == 137

    watcher.note_event(DockerEvent(kind="destroy", container_id=RUNNING.id, name=RUNNING.name))
    seen = asyncio.run(watcher.observe(RUNNING.name, fresh=True))
    assert seen is not None
    assert seen.exit_code is None


def test_a_steady_container_is_inspected_once_then_served_from_the_list() -> None:
    docker = Docker(RUNNING)
    watcher = observer(docker)

    async def resyncs(count: int) -> None:
        for _ in range(count):
            await watcher.refresh()
            assert await watcher.observe(RUNNING.name) is not None

    asyncio.run(resyncs(3))
    assert docker.lists == 3
    assert docker.inspects == 1


def test_exit_codes_of_containers_no_longer_listed_are_forgotten() -> None:
    """A container removed while the event stream was down sends no destroy event: the list says it."""
    docker = Docker(RUNNING)
    watcher = observer(docker)
    watcher.note_event(die(RUNNING, 137))
    docker.containers.clear()
    asyncio.run(watcher.refresh())
    docker.containers[RUNNING.name] = RUNNING
    seen = asyncio.run(watcher.observe(RUNNING.name, fresh=True))
    assert seen is not None
    assert seen.exit_code is None
