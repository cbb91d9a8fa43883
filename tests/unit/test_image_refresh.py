"""spec.imageUpdate: the verdict (pure), the shared registry check, and passes that apply or report."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from controller.api.workspace import ImageUpdate
from controller.core.image_refresh import checks, judge
from controller.port.errors import RegistryUnavailable
from controller.port.values import RegistryCredentials
from controller.reconcile.registry_digests import RegistryDigests
from tests.support.fake_runtime import FakeRuntime, registry_digest_of
from tests.unit.test_reconciler import IMAGE, IMAGE_ID, World

REPO = IMAGE.rsplit(":", 1)[0]
OLD = f"{REPO}@sha256:{'1' * 64}"
NEW = f"{REPO}@sha256:{'2' * 64}"
NEW_ID = "sha256:" + "b" * 64


def update(policy: str = "Auto", request: str | None = None) -> ImageUpdate:
    return ImageUpdate.model_validate({"policy": policy, "applyRequestedAt": request})


# --- the verdict ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "latest", "handled", "applied", "approval", "expected"),
    [
        ("Auto", OLD, None, None, None, (None, False, None)),
        ("Auto", NEW, None, None, None, (NEW, True, None)),
        ("Auto", None, None, None, None, (None, False, None)),  # the check failed: nothing is known
        ("Auto", NEW, None, NEW, None, (NEW, False, None)),  # applied once already: reported, not looped
        ("Manual", NEW, None, None, None, (NEW, False, None)),
        ("Manual", NEW, None, None, "go", (NEW, True, "go")),
        ("Manual", NEW, "go", None, "go", (NEW, False, "go")),  # that approval was handled before
        ("Manual", OLD, None, None, "go", (None, False, "go")),  # nothing newer: the approval is answered
    ],
)
def test_judge(
    policy: str,
    latest: str | None,
    handled: str | None,
    applied: str | None,
    approval: str | None,
    expected: tuple[str | None, bool, str | None],
) -> None:
    verdict = judge(update(policy, approval), running=OLD, latest=latest, handled=handled, applied=applied)
    assert (verdict.update_available, verdict.apply, verdict.handled) == expected


def test_only_a_tag_is_checked_and_only_when_asked() -> None:
    assert checks(update(), IMAGE)
    assert not checks(None, IMAGE)
    assert not checks(update(), f"{REPO}@sha256:{'1' * 64}")
    assert not checks(update(), f"{IMAGE}@sha256:{'1' * 64}")


# --- the shared check -------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def registry_of(images: int) -> dict[str, str]:
    return {f"registry.test/agents/a{n}:latest": f"sha256:{n:064x}" for n in range(images)}


def test_two_hundred_workspaces_on_nine_images_make_nine_registry_requests_per_interval() -> None:
    async def scenario() -> None:
        registry = registry_of(9)
        runtime = FakeRuntime(registry=registry)
        clock = Clock()
        digests = RegistryDigests(monotonic=clock)
        refs = [f"registry.test/agents/a{n % 9}:latest" for n in range(200)]

        answers = await asyncio.gather(*(digests.latest(runtime, ref, None, 300) for ref in refs))
        assert runtime.count("registry_digest") == digests.requests == 9
        expected = [registry_digest_of(registry[ref]) for ref in refs]
        assert [a.digest for a in answers] == expected

        clock.now += 299
        await asyncio.gather(*(digests.latest(runtime, ref, None, 300) for ref in refs))
        assert runtime.count("registry_digest") == 9  # still fresh

        clock.now += 2
        await asyncio.gather(*(digests.latest(runtime, ref, None, 300) for ref in refs))
        assert runtime.count("registry_digest") == 18

    asyncio.run(scenario())


def test_other_credentials_ask_for_themselves_and_a_failure_is_remembered_as_long_as_an_answer() -> None:
    async def scenario() -> None:
        ref = "registry.test/agents/a0:latest"
        runtime = FakeRuntime(registry=registry_of(1))
        clock = Clock()
        digests = RegistryDigests(monotonic=clock)
        alice = RegistryCredentials("registry.test", "alice", "one")
        bob = RegistryCredentials("registry.test", "bob", "two")
        await digests.latest(runtime, ref, alice, 60)
        await digests.latest(runtime, ref, bob, 60)
        await digests.latest(runtime, ref, alice, 60)
        assert runtime.count("registry_digest") == 2

        runtime.fail("registry_digest", RegistryUnavailable("registry.test: connection refused"))
        failed = await digests.latest(runtime, "registry.test/agents/other:latest", None, 60)
        assert failed.digest is None
        assert failed.error is not None
        assert "connection refused" in failed.error
        again = await digests.latest(runtime, "registry.test/agents/other:latest", None, 60)
        assert again is failed
        assert runtime.count("registry_digest") == 3

    asyncio.run(scenario())


# --- passes -------------------------------------------------------------------------------------------


async def refreshing_world(policy: str, **extra: Any) -> tuple[World, Clock]:
    world = World(imageUpdate={"policy": policy, "intervalSeconds": 60, **extra})
    await world.start()
    clock = Clock()
    world.reconciler.registry_digests = RegistryDigests(monotonic=clock)
    created = await world.reconcile()
    assert world.cond("Ready") == ("True", "ContainerRunning")
    assert created.requeue_after == 1.0  # its first check is the next pass
    assert "image" not in world.status
    await world.reconcile()
    assert world.runtime.count("registry_digest") == 1
    return world, clock


def push(world: World) -> str:
    """A new image under the same tag in the registry; the host still has the old one."""
    world.runtime.registry[IMAGE] = NEW_ID
    return f"{REPO}@{registry_digest_of(NEW_ID)}"


def test_auto_replaces_the_container_with_the_new_image_within_one_interval() -> None:
    async def scenario() -> None:
        world, clock = await refreshing_world("Auto")
        first = world.container()
        running = world.status["container"]["imageDigest"]
        assert world.status["image"]["latest"] == running
        assert "updateAvailable" not in world.status["image"]
        new = push(world)

        result = await world.reconcile()
        assert world.container().id == first.id  # the last answer is still fresh
        assert result.requeue_after is not None
        assert 59 < result.requeue_after <= 61  # looked at again when the answer expires

        clock.now += 61
        await world.reconcile()
        replaced = world.container()
        assert replaced.id != first.id
        assert replaced.image_id == NEW_ID
        assert world.status["container"]["imageDigest"] == new
        assert world.status["image"]["latest"] == new
        assert "updateAvailable" not in world.status["image"]
        assert world.cond("Ready") == ("True", "ContainerRunning")

        mark = world.mark()
        clock.now += 61
        await world.reconcile()
        assert world.writes_since(mark) == []  # up to date: nothing more

    asyncio.run(scenario())


def test_manual_reports_the_update_and_applies_it_only_when_asked() -> None:
    async def scenario() -> None:
        world, clock = await refreshing_world("Manual")
        first = world.container()
        old = world.status["container"]["imageDigest"]
        new = push(world)
        clock.now += 61

        mark = world.mark()
        await world.reconcile()
        assert world.writes_since(mark) == []
        assert world.container().id == first.id
        assert world.status["image"]["updateAvailable"] == new
        assert world.status["container"]["imageDigest"] == old  # the running digest, always

        world.change_spec(imageUpdate={"policy": "Manual", "intervalSeconds": 60, "applyRequestedAt": "go"})
        await world.reconcile()
        assert world.container().id != first.id
        assert world.container().image_id == NEW_ID
        assert world.status["image"]["lastApplyHandled"] == "go"
        assert "updateAvailable" not in world.status["image"]

        mark = world.mark()
        await world.reconcile()
        assert world.writes_since(mark) == []  # handled once

    asyncio.run(scenario())


def test_a_failed_pull_of_the_update_keeps_the_running_container() -> None:
    async def scenario() -> None:
        world, clock = await refreshing_world("Auto")
        first = world.container()
        push(world)
        clock.now += 61
        world.runtime.fail("pull_image", RegistryUnavailable("registry.test: connection reset"))

        result = await world.reconcile()
        assert result.result == "error"
        assert world.container().id == first.id
        assert world.container().state == "running"
        assert world.runtime.count("remove_container") == 0

        await world.reconcile()  # the registry is back: applied
        assert world.container().image_id == NEW_ID

    asyncio.run(scenario())


def test_a_check_that_fails_is_reported_and_touches_nothing() -> None:
    async def scenario() -> None:
        world, clock = await refreshing_world("Auto")
        first = world.container()
        clock.now += 61
        world.runtime.fail("registry_digest", RegistryUnavailable("registry.test: no route to host"))
        mark = world.mark()
        await world.reconcile()
        assert world.writes_since(mark) == []
        assert "no route to host" in world.status["image"]["error"]
        assert world.cond("Ready") == ("True", "ContainerRunning")
        assert world.container().id == first.id
        checked = datetime.fromisoformat(world.status["image"]["checkedAt"])
        assert checked <= datetime.now(UTC)

    asyncio.run(scenario())


def test_without_image_update_the_registry_is_never_asked_and_status_has_no_image() -> None:
    async def scenario() -> None:
        world = World()
        await world.reconcile()
        await world.reconcile()
        assert world.runtime.count("registry_digest") == 0
        assert "image" not in world.status
        assert world.container().image_id == IMAGE_ID

    asyncio.run(scenario())
