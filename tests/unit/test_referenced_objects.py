"""The watch-kept Secrets and ConfigMaps: one GET per object, then the watch; who is woken, and when."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from controller.kube.referenced_objects import (
    CONFIG_MAPS,
    SECRETS,
    Key,
    ReferencedObjects,
    kept,
    same_content,
)


class Reader:
    """Counts GETs; `gate` holds them until released (to put a watch event in the middle of one)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.gets: list[tuple[str, str, str]] = []
        self.gate: asyncio.Event | None = None

    async def _get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.gets.append((kind, namespace, name))
        if self.gate is not None:
            await self.gate.wait()
        return self.objects.get((kind, namespace, name))

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get(SECRETS, namespace, name)

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get(CONFIG_MAPS, namespace, name)


def secret(name: str, value: str, *, namespace: str = "ns", version: str = "1") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": version, "managedFields": [{}]},
        "type": "Opaque",
        "data": {"token": value},
    }


def run(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """An async test run on its own event loop (fixtures are passed through)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def referenced(objects: ReferencedObjects, reader: Reader, name: str, *uids: str) -> Key:
    """A Secret read once and referenced by `uids`."""
    key: Key = (SECRETS, "ns", name)
    reader.objects[key] = secret(name, "eA==")
    await objects.get(*key)
    for uid in uids:
        objects.referenced(uid, [key])
    return key


@pytest.fixture
def reader() -> Reader:
    return Reader()


@pytest.fixture
def woken() -> list[str]:
    return []


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def objects(reader: Reader, woken: list[str], clock: Clock) -> ReferencedObjects:
    return ReferencedObjects(reader, wake=woken.append, max_age=600.0, clock=clock)


@run
async def test_an_object_is_read_once_and_then_answered_from_what_is_kept(
    objects: ReferencedObjects, reader: Reader
) -> None:
    reader.objects[(SECRETS, "ns", "s")] = secret("s", "dmFsdWU=")
    first = await objects.get(SECRETS, "ns", "s")
    objects.referenced("uid-1", [(SECRETS, "ns", "s")])
    again = await objects.get(SECRETS, "ns", "s")
    assert first == again
    assert first is not None
    assert first["data"] == {"token": "dmFsdWU="}
    assert reader.gets == [(SECRETS, "ns", "s")]


@run
async def test_only_what_a_pass_reads_is_kept(objects: ReferencedObjects, reader: Reader) -> None:
    reader.objects[(SECRETS, "ns", "s")] = secret("s", "eA==")
    body = await objects.get(SECRETS, "ns", "s")
    assert body is not None
    assert "managedFields" not in body["metadata"]
    assert body["metadata"]["resourceVersion"] == "1"


@run
async def test_concurrent_first_reads_share_one_get(objects: ReferencedObjects, reader: Reader) -> None:
    reader.gate = asyncio.Event()
    reader.objects[(CONFIG_MAPS, "ns", "m")] = {
        "metadata": {"name": "m", "namespace": "ns"},
        "data": {"a": "b"},
    }
    reads = [asyncio.ensure_future(objects.get(CONFIG_MAPS, "ns", "m")) for _ in range(5)]
    await asyncio.sleep(0)
    reader.gate.set()
    results = await asyncio.gather(*reads)
    assert all(r == results[0] for r in results)
    assert results[0] is not None
    assert len(reader.gets) == 1


@run
async def test_an_absent_object_is_kept_absent_until_the_watch_shows_it_and_its_referrers_are_woken(
    objects: ReferencedObjects, reader: Reader, woken: list[str]
) -> None:
    assert await objects.get(SECRETS, "ns", "later") is None
    objects.referenced("uid-1", [(SECRETS, "ns", "later")])
    assert await objects.get(SECRETS, "ns", "later") is None
    assert len(reader.gets) == 1

    objects.watch_event(SECRETS, "ADDED", secret("later", "eQ=="))
    assert woken == ["uid-1"]
    body = await objects.get(SECRETS, "ns", "later")
    assert body is not None
    assert body["data"] == {"token": "eQ=="}
    assert len(reader.gets) == 1


@run
async def test_a_deletion_is_kept_as_absent(
    objects: ReferencedObjects, woken: list[str], reader: Reader
) -> None:
    reader.objects[(SECRETS, "ns", "s")] = secret("s", "eA==")
    await objects.get(SECRETS, "ns", "s")
    objects.referenced("uid-1", [(SECRETS, "ns", "s")])
    objects.watch_event(SECRETS, "DELETED", secret("s", "eA=="))
    assert await objects.get(SECRETS, "ns", "s") is None
    assert woken == ["uid-1"]


@run
async def test_a_new_resource_version_with_the_same_content_wakes_nobody(
    objects: ReferencedObjects, reader: Reader, woken: list[str]
) -> None:
    reader.objects[(SECRETS, "ns", "s")] = secret("s", "eA==")
    await objects.get(SECRETS, "ns", "s")
    objects.referenced("uid-1", [(SECRETS, "ns", "s")])
    objects.watch_event(SECRETS, "MODIFIED", secret("s", "eA==", version="2"))
    assert woken == []
    objects.watch_event(SECRETS, "MODIFIED", secret("s", "eg==", version="3"))
    assert woken == ["uid-1"]


@run
async def test_objects_nobody_references_go_by(
    objects: ReferencedObjects, reader: Reader, woken: list[str]
) -> None:
    objects.watch_event(SECRETS, "ADDED", secret("helm-release", "x" * 1000))
    assert len(objects) == 0
    assert woken == []


@run
async def test_every_referrer_is_woken_and_a_forgotten_one_is_not(
    objects: ReferencedObjects, reader: Reader, woken: list[str]
) -> None:
    await referenced(objects, reader, "shared", "uid-b", "uid-a", "uid-c")
    objects.forget("uid-c")
    objects.watch_event(SECRETS, "MODIFIED", secret("shared", "eQ==", version="2"))
    assert woken == ["uid-a", "uid-b"]


@run
async def test_an_object_no_longer_referenced_is_dropped_and_read_again_if_referenced_again(
    objects: ReferencedObjects, reader: Reader, woken: list[str]
) -> None:
    key = await referenced(objects, reader, "s", "uid-1")
    objects.referenced("uid-1", [])
    assert len(objects) == 0
    objects.watch_event(SECRETS, "MODIFIED", secret("s", "eQ==", version="2"))
    assert woken == []
    await objects.get(*key)
    assert len(reader.gets) == 2


@run
async def test_a_kept_object_is_read_again_past_its_age(
    objects: ReferencedObjects, reader: Reader, clock: Clock
) -> None:
    key = (CONFIG_MAPS, "ns", "m")
    reader.objects[key] = {"metadata": {"name": "m", "namespace": "ns"}, "data": {"a": "1"}}
    await objects.get(*key)
    objects.referenced("uid-1", [key])
    clock.now += 599
    await objects.get(*key)
    assert len(reader.gets) == 1
    # A deletion the watch missed (it was down): bounded by the age.
    del reader.objects[key]
    clock.now += 2
    assert await objects.get(*key) is None
    assert len(reader.gets) == 2


@run
async def test_a_watch_event_during_a_get_wins_over_the_get(
    objects: ReferencedObjects, reader: Reader
) -> None:
    key = (SECRETS, "ns", "s")
    reader.objects[key] = secret("s", "b2xk")  # what the GET will answer: older than the event
    reader.gate = asyncio.Event()
    read = asyncio.ensure_future(objects.get(*key))
    await asyncio.sleep(0)
    objects.watch_event(SECRETS, "MODIFIED", secret("s", "bmV3", version="2"))
    reader.gate.set()
    body = await read
    assert body is not None
    assert body["data"] == {"token": "bmV3"}
    reader.gate = None
    again = await objects.get(*key)
    assert again is not None
    assert again["data"] == {"token": "bmV3"}


@run
async def test_a_created_object_is_known_without_a_read(objects: ReferencedObjects, reader: Reader) -> None:
    objects.created(SECRETS, "ns", secret("token", "dA=="))
    body = await objects.get(SECRETS, "ns", "token")
    assert body is not None
    assert body["data"] == {"token": "dA=="}
    assert reader.gets == []


@run
async def test_without_an_age_every_read_is_a_get(reader: Reader) -> None:
    objects = ReferencedObjects(reader, wake=lambda _: None, max_age=0.0)
    reader.objects[(SECRETS, "ns", "s")] = secret("s", "eA==")
    await objects.get(SECRETS, "ns", "s")
    await objects.get(SECRETS, "ns", "s")
    assert len(reader.gets) == 2


def test_kept_and_same_content() -> None:
    assert kept(None) is None
    a = kept(secret("s", "eA==", version="1"))
    b = kept(secret("s", "eA==", version="2"))
    assert a != b
    assert same_content(a, b)
    assert not same_content(a, None)
    assert same_content(None, None)
    labelled = kept({**secret("s", "eA=="), "metadata": {"name": "s", "labels": {"x": "y"}}})
    assert not same_content(a, labelled)
