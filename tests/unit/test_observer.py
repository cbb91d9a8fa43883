"""The observer: one list per resync for everyone, inspect only on news, and how the last run ended.

`with_last_exit` is pinned on containers parsed from inspect answers captured from Docker Engine 20.10
(tests/unit/fixtures). The observer itself runs against the in-memory `FakeRuntime`, whose record of calls
shows what is pinned here: when the observer asks the runtime.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from controller import metrics
from controller.core import labels
from controller.core.identity import WorkspaceRef
from controller.docker.parse import parse_container_inspect
from controller.port.errors import RuntimeUnavailable
from controller.port.values import ContainerEvent, ContainerSpec, File, FileTree, ObservedContainer
from controller.reconcile.observer import OWN_ECHO_SECONDS, Observer, with_last_exit
from tests.support.fake_runtime import FakeRuntime

FIXTURES = Path(__file__).parent / "fixtures" / "docker"
INSTANCE = "default"
IMAGE = "registry.test/agent:1"
NAME = "ws-3f2a9c1e-8b7"


def inspected(name: str) -> ObservedContainer:
    data: dict[str, Any] = json.loads((FIXTURES / "containers_inspect.json").read_text())[name]
    return parse_container_inspect(data)


RUNNING = inspected("ws-fixture-running")
RESTARTING = inspected("ws-fixture-restarting")


def spec(name: str) -> ContainerSpec:
    owner = WorkspaceRef(uid="3f2a9c1e-8b7d-4e21-9a0f-123456789abc", namespace="team-a", name="alice")
    return ContainerSpec(
        name=name, image=IMAGE, platform=None, env=(),
        labels=labels.with_config_hash(labels.workspace_labels(INSTANCE, owner, "Delete"), "h1"),
        exposed_port="8000/tcp", port_bindings=(), restart_policy="unless-stopped", network=None,
        aliases=(), binds=(), read_only_rootfs=False, tmpfs={}, memory=0, nano_cpus=0,
        privileged=False, pid_mode=None, network_mode="none", cap_drop=(), cap_add=(), security_opt=(),
        pids_limit=0,
    )  # fmt: skip


def running_workspace() -> tuple[FakeRuntime, str]:
    """A runtime holding one running workspace container, made through the port; and its ID."""
    runtime = FakeRuntime(registry={IMAGE: "sha256:" + "a" * 64})

    async def make() -> str:
        await runtime.pull_image(IMAGE)
        container_id = await runtime.create_container(
            spec(NAME), FileTree("/configs", {"config.yaml": File(b"x")})
        )
        await runtime.start_container(container_id)
        return container_id

    return runtime, asyncio.run(make())


def die(container_id: str, exit_code: int) -> ContainerEvent:
    return ContainerEvent(kind="die", container_id=container_id, name=NAME, exit_code=exit_code)


def test_a_running_container_reports_the_exit_code_of_its_last_run() -> None:
    assert RUNNING.exit_code is None  # Docker says 0 once it runs again; the parser says "none"
    assert with_last_exit(RUNNING, 137).exit_code == 137
    assert with_last_exit(RUNNING, None).exit_code is None


def test_what_inspect_says_about_a_dead_container_wins_over_older_events() -> None:
    assert RESTARTING.exit_code == 1
    assert with_last_exit(RESTARTING, 137).exit_code == 1


def test_a_die_event_is_remembered_for_that_container_until_it_is_destroyed() -> None:
    runtime, container_id = running_workspace()
    watcher = Observer(runtime, INSTANCE)

    watcher.note_event(die(container_id, 137))
    watcher.note_event(die("f" * 64, 3))
    seen = asyncio.run(watcher.observe(NAME, fresh=True))
    assert seen is not None
    assert seen.running
    assert seen.exit_code == 137

    watcher.note_event(ContainerEvent(kind="destroy", container_id=container_id, name=NAME))
    seen = asyncio.run(watcher.observe(NAME, fresh=True))
    assert seen is not None
    assert seen.exit_code is None


def test_a_steady_container_is_inspected_once_then_served_from_the_list() -> None:
    runtime, _ = running_workspace()
    watcher = Observer(runtime, INSTANCE)

    async def resyncs(count: int) -> None:
        for _ in range(count):
            await watcher.refresh()
            assert await watcher.observe(NAME) is not None

    asyncio.run(resyncs(3))
    assert runtime.count("list_containers") == 3
    assert runtime.count("inspect_container") == 1


def test_the_list_selects_this_instances_containers_only() -> None:
    runtime, _ = running_workspace()
    runtime.add_foreign("ws-elsewhere", labels.owned("other-instance"))
    snapshot = asyncio.run(Observer(runtime, INSTANCE).refresh())
    assert list(snapshot.by_name) == [NAME]


def test_a_container_this_controller_changed_is_inspected_again() -> None:
    runtime, _ = running_workspace()
    watcher = Observer(runtime, INSTANCE)

    async def resync_then_touch() -> None:
        await watcher.refresh()
        await watcher.observe(NAME)
        watcher.touched(NAME)
        await watcher.observe(NAME)

    asyncio.run(resync_then_touch())
    assert runtime.count("list_containers") == 1
    assert runtime.count("inspect_container") == 2


def test_a_settled_container_is_quiet_while_the_list_shows_it_unchanged() -> None:
    runtime, container_id = running_workspace()
    watcher = Observer(runtime, INSTANCE)
    uid = runtime.containers[container_id].spec.labels[labels.UID_LABEL]

    async def scenario() -> None:
        await watcher.refresh()
        seen = await watcher.observe(NAME)
        assert watcher.quiet() == set()  # no pass has settled it yet
        watcher.settle(NAME, seen)
        await watcher.refresh()
        assert watcher.quiet() == {uid}

        runtime.containers[container_id].state = "exited"  # a change its event would also report
        await watcher.refresh()
        assert watcher.quiet() == set()
        runtime.containers[container_id].state = "running"
        await watcher.refresh()
        assert watcher.quiet() == {uid}

        watcher.touched(NAME)  # this controller changed it: no longer as settled
        assert watcher.quiet() == set()
        await watcher.refresh()
        assert watcher.quiet() == set()

        watcher.settle(NAME, await watcher.observe(NAME))
        assert watcher.quiet() == {uid}
        watcher.settle(NAME, None)  # a pass that did not settle
        assert watcher.quiet() == set()

        watcher.settle(NAME, await watcher.observe(NAME))
        runtime.fail("list_containers", RuntimeUnavailable("Docker daemon did not answer"))
        with pytest.raises(RuntimeUnavailable):
            await watcher.refresh()
        assert watcher.quiet() == set()  # no usable list: everyone looks

    asyncio.run(scenario())


def inspects_by_reason() -> dict[str, float]:
    return {
        sample.labels["reason"]: sample.value
        for metric in metrics.CONTAINER_INSPECTS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


def test_each_inspect_is_counted_under_why_the_list_could_not_answer() -> None:
    runtime, container_id = running_workspace()
    watcher = Observer(runtime, INSTANCE)
    before = inspects_by_reason()

    async def scenario() -> None:
        await watcher.refresh()
        await watcher.observe(NAME)  # never inspected: unknown
        await watcher.observe(NAME)  # served by that inspect
        runtime.containers[container_id].state = "exited"
        await watcher.refresh()
        await watcher.observe(NAME)  # differs
        watcher.touched(NAME)
        await watcher.observe(NAME)  # changed
        await watcher.observe(NAME, fresh=True)  # asked
        runtime.fail("list_containers", RuntimeUnavailable("Docker daemon did not answer"))
        with pytest.raises(RuntimeUnavailable):
            await watcher.refresh()
        await watcher.observe(NAME)  # no_list

    asyncio.run(scenario())
    after = inspects_by_reason()
    counted = {reason: after[reason] - before.get(reason, 0.0) for reason in after}
    assert counted == {"unknown": 1, "differs": 1, "changed": 1, "asked": 1, "no_list": 1}
    assert runtime.count("inspect_container") == 5


def test_after_a_failed_list_each_container_is_inspected_instead() -> None:
    runtime, _ = running_workspace()
    watcher = Observer(runtime, INSTANCE)
    runtime.fail("list_containers", RuntimeUnavailable("Docker daemon did not answer"))

    with pytest.raises(RuntimeUnavailable):
        asyncio.run(watcher.refresh())
    seen = asyncio.run(watcher.observe(NAME))
    assert seen is not None
    assert seen.detail
    assert runtime.count("inspect_container") == 1


def test_exit_codes_of_containers_no_longer_listed_are_forgotten() -> None:
    """A container removed while the event stream was down sends no destroy event: the list says it."""
    runtime, container_id = running_workspace()
    watcher = Observer(runtime, INSTANCE)
    watcher.note_event(die(container_id, 137))
    # Out of sight for one list (as if gone), then back under the same ID: only the list could tell.
    hidden = runtime.containers.pop(container_id)
    asyncio.run(watcher.refresh())
    runtime.containers[container_id] = hidden
    seen = asyncio.run(watcher.observe(NAME, fresh=True))
    assert seen is not None
    assert seen.exit_code is None


def test_only_events_that_may_say_something_new_are_news() -> None:
    """The create and start this controller made, and a health verdict it has already seen, are echoes:
    no pass inspects for them. A die, a kill, a destroy, another verdict, another container are news."""

    runtime, container_id = running_workspace()
    runtime.containers[container_id].health = "healthy"

    async def scenario() -> None:
        observer = Observer(runtime, INSTANCE)

        def event(kind: str, *, cid: str = container_id, health: Any = None) -> ContainerEvent:
            return ContainerEvent(kind=kind, action=kind, container_id=cid, name=NAME, health=health)

        assert observer.news(event("start"))  # never inspected: anything is news
        observer.touched(NAME)  # this controller creates and starts it; its pass inspects after
        assert not observer.news(event("create"))
        assert not observer.news(event("start"))
        assert observer.news(event("die"))
        seen = await observer.observe(NAME, fresh=True)
        assert seen is not None
        assert seen.running
        assert not observer.news(event("create"))
        assert not observer.news(event("start"))
        assert not observer.news(event("health_status", health="healthy"))
        assert observer.news(event("health_status", health="unhealthy"))
        for kind in ("die", "oom", "kill", "stop", "destroy", "rename", "pause", "unpause"):
            assert observer.news(event(kind)), kind
        assert observer.news(event("start", cid="another-container"))

    asyncio.run(scenario())


def test_the_echo_of_a_call_under_way_is_no_news_however_long_it_waited_for_a_slot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In a burst a start may wait longer for a free Docker slot than the echo window after the create;
    its `start` event is still the echo of this controller's own call while that call is under way."""
    runtime, container_id = running_workspace()
    now = [1000.0]
    monkeypatch.setattr("controller.reconcile.observer.time.monotonic", lambda: now[0])
    observer = Observer(runtime, INSTANCE)

    def event(kind: str) -> ContainerEvent:
        return ContainerEvent(kind=kind, action=kind, container_id=container_id, name=NAME)

    observer.touched(NAME)  # the create's answer
    now[0] += OWN_ECHO_SECONDS + 50  # the start waited this long for a slot
    assert observer.news(event("start"))  # not under way: too long ago to be taken for the echo
    with observer.changing(NAME):
        now[0] += OWN_ECHO_SECONDS + 50  # and this long again in the call, before it reached the daemon
        assert not observer.news(event("start"))
        assert not observer.news(event("create"))
        assert observer.news(event("die"))
        with observer.changing(NAME):  # two at once (a rename of the retired one, say)
            pass
        now[0] += OWN_ECHO_SECONDS + 50
        assert not observer.news(event("start"))
    assert not observer.news(event("start"))  # just after the answer: within the echo window
    now[0] += OWN_ECHO_SECONDS + 1
    assert observer.news(event("start"))


def test_the_newer_of_the_list_and_the_last_inspect_speaks_for_the_container() -> None:
    runtime, container_id = running_workspace()
    watcher = Observer(runtime, INSTANCE)

    async def scenario() -> None:
        await watcher.refresh()
        watcher.touched(NAME)  # this controller changed it after the list
        assert await watcher.observe(NAME) is not None  # the list cannot speak for it: inspected
        assert runtime.count("inspect_container") == 1
        runtime.containers[container_id].state = "exited"  # unseen: no event delivered, no list taken
        seen = await watcher.observe(NAME)  # the inspect is newer than the list: it speaks
        assert seen is not None
        assert seen.state == "running"
        assert runtime.count("inspect_container") == 1
        await watcher.refresh()  # a list newer than the inspect, showing otherwise
        seen = await watcher.observe(NAME)
        assert seen is not None
        assert seen.state == "exited"
        assert runtime.count("inspect_container") == 2

    asyncio.run(scenario())


def test_a_container_an_event_brought_news_of_is_inspected_once_whichever_name_it_has() -> None:
    runtime, container_id = running_workspace()
    watcher = Observer(runtime, INSTANCE)

    async def scenario() -> None:
        await watcher.refresh()
        await watcher.observe(NAME)
        assert runtime.count("inspect_container") == 1
        runtime.containers[container_id].health = "unhealthy"
        watcher.heard(NAME)  # its health_status event
        assert watcher.listed(NAME)
        seen = await watcher.observe(NAME)
        assert seen is not None
        assert seen.health == "unhealthy"
        await watcher.observe(NAME)
        assert runtime.count("inspect_container") == 2  # once per news
        watcher.heard("ws-3f2a9c1e-8b7-next")  # news of a rollout's other container
        assert watcher.listed("ws-3f2a9c1e-8b7-next")

    asyncio.run(scenario())
