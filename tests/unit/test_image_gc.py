"""The image GC's decision (pure) and one collector pass on the fake runtime: only images wholly under
the workspace registry prefix, unused by every container and not being pulled, go, and only after the
delay from when a pass first saw them unused."""

from __future__ import annotations

import asyncio

from controller.core.image_gc import collect, is_ours
from controller.port.values import ObservedImage
from controller.reconcile.image_gc import ImageCollector
from tests.support.fake_runtime import FakeRuntime

PREFIX = "reg.local:5000/molecule-ai"
OLD = ObservedImage("sha256:old", (f"{PREFIX}/workspace-template-langgraph@sha256:{'1' * 64}",), ())
CURRENT = ObservedImage("sha256:cur", (), (f"{PREFIX}/workspace-template-langgraph:latest",))
ELSEWHERE = ObservedImage("sha256:busybox", (), ("docker.io/library/busybox:1",))
BOTH = ObservedImage("sha256:both", (), (f"{PREFIX}/workspace-template-x:1", "other.io/x:1"))
NAMELESS = ObservedImage("sha256:none", (), ())


def test_an_image_is_ours_only_when_every_name_of_it_is_under_the_prefix() -> None:
    assert is_ours(OLD, PREFIX)
    assert is_ours(CURRENT, PREFIX + "/")
    assert not is_ours(ELSEWHERE, PREFIX)
    assert not is_ours(BOTH, PREFIX)
    assert not is_ours(NAMELESS, PREFIX)
    assert not is_ours(ObservedImage("i", (), (f"{PREFIX}-evil/x:1",)), PREFIX)


def test_an_unused_image_goes_after_the_delay_and_nothing_else_does() -> None:
    images = [OLD, CURRENT, ELSEWHERE, BOTH, NAMELESS]
    first = collect(images, {"sha256:cur"}, [], prefix=PREFIX, unused_since={}, now=100.0, delay=60)
    assert first.remove == ()
    assert first.unused_since == {"sha256:old": 100.0}
    assert first.kept == {"waiting": 1, "in-use": 1, "not-ours": 3}

    later = collect(
        images, {"sha256:cur"}, [], prefix=PREFIX, unused_since=first.unused_since, now=159.0, delay=60
    )
    assert later.remove == ()
    due = collect(
        images, {"sha256:cur"}, [], prefix=PREFIX, unused_since=later.unused_since, now=160.0, delay=60
    )
    assert due.remove == (OLD,)
    assert due.unused_since == {}


def test_an_image_in_use_again_or_being_pulled_starts_from_zero() -> None:
    waiting = {"sha256:old": 0.0}
    used = collect([OLD], {"sha256:old"}, [], prefix=PREFIX, unused_since=waiting, now=500.0, delay=60)
    assert used.remove == ()
    assert used.unused_since == {}
    pulled = collect(
        [OLD],
        set(),
        [f"{PREFIX}/workspace-template-langgraph:latest"],
        prefix=PREFIX,
        unused_since=waiting,
        now=500.0,
        delay=60,
    )
    assert pulled.remove == ()
    assert pulled.kept == {"pulling": 1}


def test_a_collector_pass_removes_what_is_due_and_keeps_what_a_container_uses() -> None:
    async def scenario() -> None:
        runtime = FakeRuntime()
        runtime.images = {
            f"{PREFIX}/workspace-template-a:old": ObservedImage("sha256:a-old"),
            f"{PREFIX}/workspace-template-a:new": ObservedImage("sha256:a-new"),
            "docker.io/library/busybox:1": ObservedImage("sha256:busybox"),
        }
        container = runtime.add_foreign("user-container")
        container.image = f"{PREFIX}/workspace-template-a:new"
        now = [0.0]
        collector = ImageCollector(
            runtime=runtime, host="local", prefix=PREFIX, delay=30, interval=1, clock=lambda: now[0]
        )
        assert await collector.collect_once() == 0
        now[0] = 31.0
        assert await collector.collect_once() == 1
        assert set(runtime.images) == {f"{PREFIX}/workspace-template-a:new", "docker.io/library/busybox:1"}

    asyncio.run(scenario())
