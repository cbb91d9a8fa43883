"""What wakes the per-Workspace loops besides Workspace changes: the runtime's event stream and the resync.

Both run as tasks against `FakeRuntime`; every wait has a deadline, and a test waits on the thing it
expects (a wake, a subscription), never for time to pass.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest

from controller.core import labels
from controller.port.errors import RuntimeUnavailable
from controller.port.values import CONNECTED, DISCONNECTED, RECONNECTED, ContainerEvent, Labels
from controller.reconcile import watchers
from controller.reconcile.observer import Observer
from controller.reconcile.triggers import Triggers
from controller.reconcile.watchers import follow_runtime_events, resync_forever
from tests.support.fake_runtime import FakeContainer, FakeRuntime

INSTANCE = "t"
UID = "uid-a"
OTHER_UID = "uid-b"
DEADLINE = 5.0


class StreamRuntime(FakeRuntime):
    """FakeRuntime telling when its event stream is subscribed, and able to break the stream once."""

    def __init__(self) -> None:
        super().__init__()
        self.subscriptions: asyncio.Queue[int] = asyncio.Queue()
        self.break_next_stream = False
        self._subscribed = 0

    async def events(self, selector: Labels) -> AsyncIterator[ContainerEvent]:
        if self.break_next_stream:
            self.break_next_stream = False
            yield ContainerEvent(kind=CONNECTED)
            raise RuntimeUnavailable("the event stream was cut")
        async for event in super().events(selector):
            if event.kind == CONNECTED:
                # emit() reaches the stream from here on.
                self._subscribed += 1
                self.subscriptions.put_nowait(self._subscribed)
            yield event

    async def subscribed(self) -> int:
        return await asyncio.wait_for(self.subscriptions.get(), DEADLINE)


def workspace_container(runtime: FakeRuntime, uid: str, *, instance: str = INSTANCE) -> FakeContainer:
    """A running container labeled as a Workspace's (made directly in the fake, as if by a past pass)."""
    owner = {
        **labels.owned_by_workspace(instance, uid),
        labels.NAMESPACE_LABEL: "ns",
        labels.NAME_LABEL: f"w-{uid}",
    }
    return runtime.add_foreign(f"ws-{uid}", labels=owner)


def die(container: FakeContainer, exit_code: int) -> ContainerEvent:
    return ContainerEvent(
        kind="die",
        action="die",
        container_id=container.id,
        name=container.name,
        labels=dict(container.labels),
        exit_code=exit_code,
    )


async def woken(triggers: Triggers, uid: str) -> bool:
    return await asyncio.wait_for(triggers.wait(uid, DEADLINE), DEADLINE)


async def stop(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def start(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(coro)


# --- the event stream -------------------------------------------------------------------------------


def test_an_event_for_a_container_of_ours_wakes_its_workspace_for_a_fresh_look() -> None:
    async def scenario() -> None:
        runtime, triggers = StreamRuntime(), Triggers()
        observer = Observer(runtime, INSTANCE)
        mine = workspace_container(runtime, UID)
        triggers.register(UID)
        other = triggers.register(OTHER_UID)
        follower = start(follow_runtime_events(runtime, observer, triggers, INSTANCE))
        try:
            await runtime.subscribed()
            # Subscribing (CONNECTED) neither re-lists nor wakes anyone; the die below proves it was
            # handled first.
            runtime.emit(die(mine, 137))

            assert await woken(triggers, UID)
            assert triggers.take_fresh_observation(UID) is True
            assert not other.is_set()
            assert triggers.take_fresh_observation(OTHER_UID) is False
            assert runtime.count("list_containers") == 0
        finally:
            await stop(follower)

    asyncio.run(scenario())


def test_a_die_event_leaves_its_exit_code_with_the_observer() -> None:
    async def scenario() -> None:
        runtime, triggers = StreamRuntime(), Triggers()
        observer = Observer(runtime, INSTANCE)
        mine = workspace_container(runtime, UID)  # running again already, as after Docker's restart
        triggers.register(UID)
        follower = start(follow_runtime_events(runtime, observer, triggers, INSTANCE))
        try:
            await runtime.subscribed()
            runtime.emit(die(mine, 137))
            assert await woken(triggers, UID)
        finally:
            await stop(follower)

        seen = await observer.observe(mine.name, fresh=True)
        assert seen is not None
        assert seen.state == "running"
        assert seen.exit_code == 137  # the runtime no longer says; the event did

    asyncio.run(scenario())


def test_events_of_another_instance_or_without_a_workspace_wake_nobody() -> None:
    async def scenario() -> None:
        runtime, triggers = StreamRuntime(), Triggers()
        observer = Observer(runtime, INSTANCE)
        theirs = workspace_container(runtime, OTHER_UID, instance="someone-else")
        mine = workspace_container(runtime, UID)
        unlabeled = runtime.add_foreign("ws-nobody", labels=labels.owned(INSTANCE))
        triggers.register(UID)
        other = triggers.register(OTHER_UID)
        follower = start(follow_runtime_events(runtime, observer, triggers, INSTANCE))
        try:
            await runtime.subscribed()
            runtime.emit(die(theirs, 1))
            runtime.emit(die(unlabeled, 2))
            runtime.emit(die(mine, 3))  # handled after the two above

            assert await woken(triggers, UID)
            assert not other.is_set()
            assert triggers.take_fresh_observation(OTHER_UID) is False
        finally:
            await stop(follower)

        # Exit codes are noted for this instance's containers only.
        seen = await observer.observe(theirs.name, fresh=True)
        assert seen is not None
        assert seen.exit_code is None

    asyncio.run(scenario())


def test_a_reconnected_stream_makes_the_observer_list_again_and_wakes_everyone() -> None:
    async def scenario() -> None:
        runtime, triggers = StreamRuntime(), Triggers()
        observer = Observer(runtime, INSTANCE)
        for uid in (UID, OTHER_UID):
            triggers.register(uid)
        follower = start(follow_runtime_events(runtime, observer, triggers, INSTANCE))
        try:
            await runtime.subscribed()
            runtime.emit(ContainerEvent(kind=RECONNECTED))

            assert await woken(triggers, UID)
            assert await woken(triggers, OTHER_UID)
            assert runtime.count("list_containers") == 1
            # The list is the observer's: a Workspace without a container now costs no runtime call.
            before = len(runtime.calls)
            assert await observer.observe("ws-absent") is None
            assert len(runtime.calls) == before
            assert triggers.take_fresh_observation(UID) is False
        finally:
            await stop(follower)

    asyncio.run(scenario())


def test_a_reconnect_whose_list_fails_still_wakes_everyone_and_the_stream_goes_on() -> None:
    async def scenario() -> None:
        runtime, triggers = StreamRuntime(), Triggers()
        observer = Observer(runtime, INSTANCE)
        mine = workspace_container(runtime, UID)
        triggers.register(UID)
        follower = start(follow_runtime_events(runtime, observer, triggers, INSTANCE))
        try:
            await runtime.subscribed()
            runtime.fail("list_containers", RuntimeUnavailable("daemon busy"))
            runtime.emit(ContainerEvent(kind=RECONNECTED))
            assert await woken(triggers, UID)
            assert triggers.take_fresh_observation(UID) is False

            runtime.emit(die(mine, 1))
            assert await woken(triggers, UID)
            assert triggers.take_fresh_observation(UID) is True
        finally:
            await stop(follower)

    asyncio.run(scenario())


def test_a_disconnect_makes_every_loop_look_at_docker_now() -> None:
    """The daemon went away: no loop keeps reporting its last picture until the next resync."""

    async def scenario() -> None:
        runtime, triggers = StreamRuntime(), Triggers()
        observer = Observer(runtime, INSTANCE)
        workspace_container(runtime, UID)
        for uid in (UID, OTHER_UID):
            triggers.register(uid)
        await observer.refresh()
        follower = start(follow_runtime_events(runtime, observer, triggers, INSTANCE))
        try:
            await runtime.subscribed()
            runtime.fail("list_containers", RuntimeUnavailable("daemon gone"))
            runtime.emit(ContainerEvent(kind=DISCONNECTED))
            assert await woken(triggers, UID)
            assert await woken(triggers, OTHER_UID)
            assert runtime.count("list_containers") == 2
            # The failed list dropped the old one: a woken loop asks Docker (and learns it is away)
            # rather than trusting the list from before, which would say "absent" without a call.
            before = runtime.count("inspect_container")
            assert await observer.observe("ws-absent") is None
            assert runtime.count("inspect_container") == before + 1
        finally:
            await stop(follower)

    asyncio.run(scenario())


def test_a_broken_stream_is_subscribed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watchers, "RESUBSCRIBE_DELAY", 0.0)

    async def scenario() -> None:
        runtime, triggers = StreamRuntime(), Triggers()
        observer = Observer(runtime, INSTANCE)
        mine = workspace_container(runtime, UID)
        triggers.register(UID)
        runtime.break_next_stream = True
        follower = start(follow_runtime_events(runtime, observer, triggers, INSTANCE))
        try:
            assert await runtime.subscribed() == 1  # the second stream: the first broke
            runtime.emit(die(mine, 1))
            assert await woken(triggers, UID)
        finally:
            await stop(follower)

    asyncio.run(scenario())


# --- the resync ---------------------------------------------------------------------------------------


def test_the_resync_lists_once_and_wakes_every_loop() -> None:
    async def scenario() -> None:
        runtime, triggers = StreamRuntime(), Triggers()
        observer = Observer(runtime, INSTANCE)
        mine = workspace_container(runtime, UID)
        for uid in (UID, OTHER_UID):
            triggers.register(uid)
        resync = start(resync_forever(observer, triggers, interval=3600))
        try:
            assert await woken(triggers, UID)
            assert await woken(triggers, OTHER_UID)
            assert runtime.calls == [
                ("list_containers", ",".join(f"{k}={v}" for k, v in labels.owned(INSTANCE).items()))
            ]
            assert triggers.take_fresh_observation(UID) is False
        finally:
            await stop(resync)

        # The observer holds that list: a container it shows is inspected for detail, an absent one is not.
        assert await observer.observe("ws-absent") is None
        assert runtime.calls[1:] == []
        assert await observer.observe(mine.name) is not None
        assert runtime.calls[1:] == [("inspect_container", mine.name)]

    asyncio.run(scenario())


def test_the_resync_wakes_every_loop_even_when_the_list_fails() -> None:
    async def scenario() -> None:
        runtime, triggers = StreamRuntime(), Triggers()
        observer = Observer(runtime, INSTANCE)
        triggers.register(UID)
        runtime.fail("list_containers", RuntimeUnavailable("Cannot connect to the Docker daemon"))
        resync = start(resync_forever(observer, triggers, interval=3600))
        try:
            assert await woken(triggers, UID)
        finally:
            await stop(resync)
        assert runtime.count("list_containers") == 1

    asyncio.run(scenario())
