"""Volumes and networks through the adapter, against the real engine."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from controller.docker.adapter import DockerAdapter
from controller.metrics import DOCKER_CALLS
from controller.port.errors import InUse, NotFound
from tests.integration.stack import NO_FILES, Registries, Scope, container_spec


async def test_ensure_volume_creates_it_with_our_labels_and_is_idempotent(
    adapter: DockerAdapter, scope: Scope, docker_engine: Any
) -> None:
    name = scope.name("configs")
    created = await adapter.ensure_volume(name, scope.labels)
    again = await adapter.ensure_volume(name, scope.labels)

    assert created.name == again.name == name
    assert created.carries(scope.labels)
    assert again.carries(scope.labels)
    assert docker_engine.inspect_volume(name)["Labels"] == scope.labels
    assert [v.name for v in await adapter.list_volumes(scope.labels)] == [name]


async def test_a_volume_that_exists_without_our_labels_is_reported_not_adopted(
    adapter: DockerAdapter, scope: Scope, docker_engine: Any
) -> None:
    # What a bind mount does when it meets a missing named volume (seed bug B6).
    name = scope.name("implicit")
    docker_engine.create_volume(name)

    volume = await adapter.ensure_volume(name, scope.labels)

    assert volume.name == name
    assert dict(volume.labels) == {}
    assert not volume.carries(scope.labels)
    assert docker_engine.inspect_volume(name)["Labels"] in (None, {})
    assert await adapter.list_volumes(scope.labels) == []


async def test_removing_a_missing_volume_succeeds(adapter: DockerAdapter, scope: Scope) -> None:
    await adapter.remove_volume(scope.name("never-created"))


async def test_removing_a_volume_in_use_is_a_transient_in_use_error(
    adapter: DockerAdapter, registries: Registries, scope: Scope, docker_engine: Any
) -> None:
    name = scope.name("busy")
    await adapter.ensure_volume(name, scope.labels)
    spec = container_spec(
        scope.name("user"),
        registries.ref(registries.plain, "langgraph"),
        labels=scope.labels,
        binds=[f"{name}:/configs:rw"],
    )
    container_id = await adapter.create_container(spec, NO_FILES)

    with pytest.raises(InUse) as caught:
        await adapter.remove_volume(name)
    assert caught.value.transient
    assert docker_engine.inspect_volume(name)["Name"] == name

    await adapter.remove_container(container_id)
    await adapter.remove_volume(name)
    assert await adapter.list_volumes(scope.labels) == []


async def test_list_volumes_requires_a_label_selector(adapter: DockerAdapter) -> None:
    with pytest.raises(ValueError, match="label selector"):
        await adapter.list_volumes({})


def networks_named(docker_engine: Any, name: str) -> list[dict[str, Any]]:
    return [n for n in docker_engine.networks(names=[name]) if n["Name"] == name]


async def test_ensure_network_creates_one_bridge_and_is_idempotent(
    adapter: DockerAdapter, scope: Scope, docker_engine: Any
) -> None:
    name = scope.name("net")
    first = await adapter.ensure_network(name)
    second = await adapter.ensure_network(name)

    assert first == second
    [network] = networks_named(docker_engine, name)
    assert network["Id"] == first
    assert network["Driver"] == "bridge"


async def test_ensure_network_matches_the_exact_name_not_a_substring(
    adapter: DockerAdapter, scope: Scope, docker_engine: Any
) -> None:
    longer = docker_engine.create_network(scope.name("net-longer"), driver="bridge")["Id"]
    network_id = await adapter.ensure_network(scope.name("net"))
    assert network_id != longer
    assert [n["Id"] for n in networks_named(docker_engine, scope.name("net"))] == [network_id]


async def test_concurrent_ensure_network_from_several_controllers_leaves_one_network(
    scope: Scope, docker_engine: Any
) -> None:
    # Separate adapters share no lock, like separate controller processes; the engine's own
    # duplicate check is racy (observed: 8 concurrent creates can leave 7 networks of one name).
    name = scope.name("raced")
    adapters = [DockerAdapter(concurrency=1) for _ in range(6)]
    try:
        returned = await asyncio.gather(*(a.ensure_network(name) for a in adapters))
        settled = await adapters[0].ensure_network(name)
    finally:
        await asyncio.gather(*(a.close() for a in adapters))

    remaining = networks_named(docker_engine, name)
    assert [n["Id"] for n in remaining] == [settled]
    assert settled in returned


async def test_ensure_network_collapses_existing_unused_duplicates(
    adapter: DockerAdapter, scope: Scope, docker_engine: Any
) -> None:
    name = scope.name("dups")
    oldest = docker_engine.create_network(name, driver="bridge")["Id"]
    docker_engine.create_network(name, driver="bridge")  # without check_duplicate the engine allows it
    assert len(networks_named(docker_engine, name)) == 2

    assert await adapter.ensure_network(name) == oldest
    assert [n["Id"] for n in networks_named(docker_engine, name)] == [oldest]


async def test_a_network_is_asked_for_once_and_made_again_once_a_container_finds_it_gone(
    adapter: DockerAdapter, registries: Registries, scope: Scope, docker_engine: Any
) -> None:
    name = scope.name("known")
    first = await adapter.ensure_network(name)
    asked = docker_calls("ensure_network")
    assert await adapter.ensure_network(name) == first
    assert docker_calls("ensure_network") == asked  # known: no call

    docker_engine.remove_network(first)  # by hand, behind the adapter's back
    spec = container_spec(
        scope.name("joiner"), registries.ref(registries.plain, "langgraph"), labels=scope.labels, network=name
    )

    # Newer daemons refuse the create, older ones (API 1.41) the start: either way it says so.
    async def create_and_start() -> None:
        await adapter.start_container(await adapter.create_container(spec, NO_FILES, network_id=first))

    with pytest.raises(NotFound) as caught:
        await create_and_start()
    assert caught.value.resource == "network"

    made_again = await adapter.ensure_network(name)
    assert made_again != first
    assert [n["Id"] for n in networks_named(docker_engine, name)] == [made_again]


def docker_calls(operation: str) -> float:
    return sum(
        sample.value
        for metric in DOCKER_CALLS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels["operation"] == operation
    )
