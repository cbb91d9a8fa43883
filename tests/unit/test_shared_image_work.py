"""Image work shared among the Workspaces of a host: one pull of a tag per pull window (and one under way
at a time), one inspect per image for the digests; a failure is nobody's cached answer."""

from __future__ import annotations

import asyncio

import pytest

from controller.port.errors import RegistryUnavailable
from controller.port.values import RegistryCredentials
from controller.reconcile.image_digests import ImageDigests
from controller.reconcile.recent_pulls import RecentPulls
from tests.support.fake_runtime import FakeRuntime

IMAGE = "reg.local/m/agent:latest"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Registry:
    """What the pulls asked of the daemon, held open until `release`."""

    def __init__(self) -> None:
        self.pulls = 0
        self.gate = asyncio.Event()
        self.fail: Exception | None = None

    async def pull(self) -> str:
        self.pulls += 1
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return f"sha256:{self.pulls:064x}"


def test_creates_asking_together_share_the_pull_under_way() -> None:
    async def scenario() -> None:
        pulls, registry = RecentPulls(), Registry()
        waiting = [
            asyncio.ensure_future(pulls.pull(IMAGE, None, None, registry.pull, window=30)) for _ in range(50)
        ]
        await asyncio.sleep(0)
        registry.gate.set()
        results = await asyncio.gather(*waiting)
        assert registry.pulls == 1 == pulls.pulls
        assert [r.shared for r in results].count(False) == 1  # one made it, 49 used it
        assert {r.image_id for r in results} == {f"sha256:{1:064x}"}

    asyncio.run(scenario())


def test_a_pull_serves_for_its_window_then_the_tag_is_pulled_again() -> None:
    async def scenario() -> None:
        clock, registry = Clock(), Registry()
        registry.gate.set()
        pulls = RecentPulls(monotonic=clock)
        assert not (await pulls.pull(IMAGE, None, None, registry.pull, window=30)).shared
        clock.now += 29
        assert (await pulls.pull(IMAGE, None, None, registry.pull, window=30)).shared
        assert registry.pulls == 1
        clock.now += 2
        assert not (await pulls.pull(IMAGE, None, None, registry.pull, window=30)).shared
        assert registry.pulls == 2
        # A window of 0 (the Go provisioner's rule, and a new image of the tag) always pulls.
        assert not (await pulls.pull(IMAGE, None, None, registry.pull, window=0)).shared
        assert registry.pulls == 3

    asyncio.run(scenario())


def test_a_failed_pull_fails_those_waiting_for_it_and_is_not_remembered() -> None:
    async def scenario() -> None:
        pulls, registry = RecentPulls(), Registry()
        registry.fail = RegistryUnavailable("registry down")
        waiting = [
            asyncio.ensure_future(pulls.pull(IMAGE, None, None, registry.pull, window=30)) for _ in range(3)
        ]
        await asyncio.sleep(0)
        registry.gate.set()
        results = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(r, RegistryUnavailable) for r in results)
        registry.fail = None
        assert not (await pulls.pull(IMAGE, None, None, registry.pull, window=30)).shared
        assert registry.pulls == 2

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("platform", "credentials"),
    [
        ("linux/arm64", None),
        (None, RegistryCredentials(serveraddress="reg.local", username="b", password="p")),
    ],
)
def test_another_platform_or_other_credentials_pull_for_themselves(
    platform: str | None, credentials: RegistryCredentials | None
) -> None:
    async def scenario() -> None:
        pulls, registry = RecentPulls(), Registry()
        registry.gate.set()
        mine = RegistryCredentials(serveraddress="reg.local", username="a", password="p")
        await pulls.pull(IMAGE, None, mine, registry.pull, window=30)
        assert not (await pulls.pull(IMAGE, platform, credentials, registry.pull, window=30)).shared
        assert registry.pulls == 2

    asyncio.run(scenario())


def test_one_inspect_per_image_gives_every_workspace_its_digest() -> None:
    async def scenario() -> None:
        runtime = FakeRuntime(registry={IMAGE: "sha256:" + "a" * 64})
        image_id = await runtime.pull_image(IMAGE)
        digests = ImageDigests()
        answers = await asyncio.gather(*(digests.of("local", runtime, image_id, IMAGE) for _ in range(20)))
        assert len(set(answers)) == 1
        assert answers[0] is not None
        assert answers[0].startswith("reg.local/m/agent@sha256:")
        assert await digests.of("local", runtime, image_id, IMAGE) == answers[0]
        assert runtime.count("inspect_image") == 1
        await digests.of("other-host", runtime, image_id, IMAGE)  # another daemon is asked for itself
        assert runtime.count("inspect_image") == 2

    asyncio.run(scenario())


def test_an_image_not_there_is_asked_about_again() -> None:
    async def scenario() -> None:
        runtime = FakeRuntime()
        digests = ImageDigests()
        assert await digests.of("local", runtime, "sha256:" + "b" * 64, IMAGE) is None
        assert await digests.of("local", runtime, "sha256:" + "b" * 64, IMAGE) is None
        assert runtime.count("inspect_image") == 2

    asyncio.run(scenario())


def test_a_pull_of_its_own_does_not_join_one_under_way() -> None:
    async def scenario() -> None:
        pulls, registry = RecentPulls(), Registry()
        shared = asyncio.ensure_future(pulls.pull(IMAGE, None, None, registry.pull, window=30))
        await asyncio.sleep(0)
        own = asyncio.ensure_future(pulls.pull(IMAGE, None, None, registry.pull, window=0))
        await asyncio.sleep(0)
        assert registry.pulls == 2  # the one under way may have begun before the tag moved
        registry.gate.set()
        assert not (await own).shared
        assert not (await shared).shared

    asyncio.run(scenario())
