"""The reconciler's story, pass by pass, against the in-memory fakes of its two seams.

Each test drives `Reconciler.reconcile` / `finalize` the way the per-Workspace loop does: a pass reads the
Workspace (with the status the previous pass wrote fed back), converges the container through
`FakeRuntime` and reports through `FakeKube`. What is pinned is what a person or the cluster sees: the
runtime calls made (and their order), the stored status, the Events, and the loop's next step (`Result`).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.core import labels, naming
from controller.core.identity import WorkspaceRef
from controller.kube.client import ApiError, KubeApi
from controller.kube.event_recorder import EventRecorder
from controller.kube.workspace_object import FLUX_REQUESTED_AT, WorkspaceObject
from controller.port.errors import ContainerRuntimeError, RuntimeUnavailable
from controller.port.values import ObservedImage
from controller.reconcile import actions
from controller.reconcile.hosts import HostRegistry
from controller.reconcile.observer import Observer
from controller.reconcile.policies import PolicyStore
from controller.reconcile.reconciler import Reconciler, Result
from controller.settings import ControllerSettings
from tests.support.fake_kube import FakeKube
from tests.support.fake_runtime import FakeContainer, FakeRuntime, replace_container
from tests.support.hosts import one_host, the_host

INSTANCE = "t"
PREFIX = "reg.local/m"
UID = "5f0c6a52-1b7e-4d0e-9a51-7d3c1f2a9b10"
NS, WS = "ns", "w"
NAME = naming.container_name(UID)
IMAGE = f"{PREFIX}/workspace-template-langgraph:latest"
CLAUDE_IMAGE = f"{PREFIX}/workspace-template-claude-code:latest"
IMAGE_ID = "sha256:" + "a" * 64
CLAUDE_IMAGE_ID = "sha256:" + "c" * 64
CONFIG_VOLUME = naming.config_volume_name(UID)
WORKSPACE_VOLUME = naming.workspace_volume_name(UID)
SESSION_VOLUME = naming.session_volume_name(UID)
TOKEN_SECRET = f"{WS}-auth-token"

WRITES = frozenset(
    {
        "create_container",
        "write_files",
        "start_container",
        "stop_container",
        "unpause_container",
        "remove_container",
        "rename_container",
        "disconnect_network",
        "ensure_network",
        "ensure_volume",
        "remove_volume",
        "pull_image",
    }
)
"""Runtime operations that change something (everything else only reads)."""


def new_body(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"uid": UID, "namespace": NS, "name": WS, "generation": 1},
        "spec": {"config": {"files": [{"path": "config.yaml", "content": "model: x\n"}]}, **spec},
    }


class SettlingEvents(EventRecorder):
    """The real recorder, keeping hold of what it posts in the background so a test can await it."""

    def __init__(self, kube: KubeApi) -> None:
        super().__init__(kube)
        self.background: list[asyncio.Task[Any]] = []

    def post_soon(self, workspace: WorkspaceRef, type_: str, reason: str, message: str) -> None:
        before = asyncio.all_tasks()
        super().post_soon(workspace, type_, reason, message)
        self.background.extend(asyncio.all_tasks() - before)

    async def settle(self) -> None:
        while self.background:
            await self.background.pop()


@dataclass
class RecordingKube(FakeKube):
    """FakeKube that signals every status write, noting how many runtime calls preceded it and the phase."""

    runtime: FakeRuntime | None = None
    written_at: list[tuple[int, str | None]] = field(default_factory=list)
    written: asyncio.Event = field(default_factory=asyncio.Event)

    async def patch_workspace_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        await super().patch_workspace_status(namespace, name, status)
        calls = len(self.runtime.calls) if self.runtime is not None else 0
        self.written_at.append((calls, self.statuses[(namespace, name)].get("phase")))
        self.written.set()


NO_PULL_WINDOW = ControllerSettings(instance=INSTANCE, registry_prefix=PREFIX, pull_window_seconds=0)


class World:
    """One Workspace, the fakes, and the reconciler, driven pass by pass like the per-Workspace loop."""

    def __init__(
        self,
        *,
        registry: Mapping[str, str] | None = None,
        settings: ControllerSettings | None = None,
        clock: Callable[[], datetime] | None = None,
        **spec: Any,
    ) -> None:
        self.clock = clock
        self.settings = settings or ControllerSettings(instance=INSTANCE, registry_prefix=PREFIX)
        self.runtime = FakeRuntime(
            registry={IMAGE: IMAGE_ID, CLAUDE_IMAGE: CLAUDE_IMAGE_ID} if registry is None else registry
        )
        self.kube = RecordingKube(runtime=self.runtime)
        self.events = SettlingEvents(self.kube)
        self.policies = PolicyStore(
            self.kube, default_image_prefix=self.settings.registry_prefix, wake_all=lambda: None
        )
        self.hosts: HostRegistry | None = None
        self._reconciler: Reconciler | None = None
        self.body = new_body(**spec)

    async def start(self) -> None:
        """The one (implicit) host around the fake runtime, Ready, and a reconciler driving it."""
        if self.hosts is None:
            before = len(self.runtime.calls)
            self.hosts = await one_host(self.runtime, self.settings, self.kube)
            del self.runtime.calls[before:]  # the host's `docker info` is set-up, not part of any pass
        elif self._reconciler is not None:
            return
        self._reconciler = Reconciler(
            hosts=self.hosts,
            kube=self.kube,
            settings=self.settings,
            events=self.events,
            policies=self.policies,
            clock=self.clock if self.clock is not None else (lambda: datetime.now(UTC)),
        )

    @property
    def reconciler(self) -> Reconciler:
        assert self._reconciler is not None, "World.start() first"
        return self._reconciler

    @property
    def observer(self) -> Observer:
        assert self.hosts is not None, "World.start() first"
        return the_host(self.hosts).observer

    def reconciler_status_is_not_ours(self, status: dict[str, Any]) -> bool:
        return self.reconciler.status_is_not_ours(UID, status)

    async def reconcile(self, *, fresh: bool = False) -> Result:
        """One pass; the status it wrote is fed back into the Workspace, as the next watch event would."""
        if self._reconciler is None:
            await self.start()
        result = await self.reconciler.reconcile(WorkspaceObject.from_body(self.body), fresh=fresh)
        await self.events.settle()
        self.feed_back()
        return result

    async def finalize(self) -> None:
        self.body["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        if self._reconciler is None:
            await self.start()
        try:
            await self.reconciler.finalize(WorkspaceObject.from_body(self.body))
        finally:
            await self.events.settle()
            self.feed_back()

    def feed_back(self) -> None:
        stored = self.kube.statuses.get((NS, WS))
        if stored is not None:
            self.body["status"] = copy.deepcopy(stored)

    def change_spec(self, **changes: Any) -> None:
        """Edit the spec as `kubectl apply` would: the generation moves."""
        self.body["spec"].update(changes)
        self.body["metadata"]["generation"] += 1

    async def until_status(self, probe: Callable[[dict[str, Any]], bool], *, what: str) -> None:
        """Wait (at most 5 s) for a status write after which `probe(status)` holds."""
        try:
            async with asyncio.timeout(5.0):
                while not probe(self.kube.statuses.get((NS, WS), {})):
                    self.kube.written.clear()
                    await self.kube.written.wait()
        except TimeoutError:
            raise AssertionError(f"no status write showed {what}") from None

    @property
    def status(self) -> dict[str, Any]:
        return self.kube.statuses[(NS, WS)]

    def condition(self, type_: str) -> dict[str, Any] | None:
        return next((c for c in self.status.get("conditions", []) if c["type"] == type_), None)

    def cond(self, type_: str) -> tuple[str, str]:
        """(status, reason) of a condition that must be present."""
        found = self.condition(type_)
        assert found is not None, f"no {type_} condition in {self.status}"
        return found["status"], found["reason"]

    def container(self) -> FakeContainer:
        found = self.runtime.by_name(NAME)
        assert found is not None, f"no container {NAME}"
        return found

    def mark(self) -> int:
        return len(self.runtime.calls)

    def calls_since(self, mark: int) -> list[tuple[str, str]]:
        return self.runtime.calls[mark:]

    def ops_since(self, mark: int) -> list[str]:
        return [op for op, _ in self.runtime.calls[mark:]]

    def writes_since(self, mark: int) -> list[tuple[str, str]]:
        return [call for call in self.runtime.calls[mark:] if call[0] in WRITES]

    def reasons_since(self, mark: int) -> list[str]:
        return [event.reason for event in self.kube.events[mark:]]

    def warnings(self) -> list[str]:
        return [event.reason for event in self.kube.events if event.type == "Warning"]


def index(calls: list[tuple[str, str]], op: str, subject: str | None = None) -> int:
    """Position of the first call of `op` (on `subject`, when given)."""
    for i, (called, on) in enumerate(calls):
        if called == op and (subject is None or on == subject):
            return i
    raise AssertionError(f"{op}({subject or ''}) was not called: {calls}")


async def running_world(**spec: Any) -> World:
    """A Workspace whose container was created and started by a first pass."""
    world = World(**spec)
    await world.reconcile()
    assert world.cond("Ready") == ("True", "ContainerRunning")
    return world


# --- creation and the steady state ---------------------------------------------------------------


def test_a_new_workspace_is_created_with_its_configs_written_before_start_and_reported_ready() -> None:
    async def scenario() -> None:
        world = World()
        result = await world.reconcile()

        calls = world.runtime.calls
        container = world.container()
        assert index(calls, "pull_image") < index(calls, "create_container")
        # /configs are in place before the agent's first instruction runs.
        assert index(calls, "write_files", container.id) < index(calls, "start_container", container.id)
        assert container.files["/configs/config.yaml"] == b"model: x\n"
        # No token unless asked for: the platform issues the agent's.
        assert "/configs/.auth_token" not in container.files
        assert (NS, TOKEN_SECRET) not in world.kube.secrets
        assert container.state == "running"
        assert set(world.runtime.volumes) == {CONFIG_VOLUME, WORKSPACE_VOLUME}

        assert world.cond("Ready") == ("True", "ContainerRunning")
        assert world.cond("Synced") == ("True", "ReconcileSuccess")
        assert world.condition("Stalled") is None
        assert world.condition("Reconciling") is None
        status = world.status
        assert status["phase"] == "Running"
        assert status["observedGeneration"] == 1
        assert status["endpoint"] == f"http://127.0.0.1:{container.host_port}"
        assert status["container"]["id"] == container.id
        assert status["container"]["imageDigest"] == f"{PREFIX}/workspace-template-langgraph@{IMAGE_ID}"
        assert "authTokenSecretName" not in status
        assert status["workspaceID"] == UID
        assert world.kube.reasons() == ["Placed", "Pulled", "Created", "Started"]
        assert result == Result("success")

    asyncio.run(scenario())


def test_a_second_pass_with_nothing_changed_calls_nothing_and_writes_no_status() -> None:
    async def scenario() -> None:
        world = await running_world()
        patches, events, mark = len(world.kube.status_patches), len(world.kube.events), world.mark()

        result = await world.reconcile()

        # Nothing since the first pass's own inspect (no event, no newer list): no Docker call at all.
        assert world.calls_since(mark) == []
        assert len(world.kube.status_patches) == patches
        assert len(world.kube.events) == events
        assert result == Result("success")

    asyncio.run(scenario())


def test_a_steady_pass_after_a_resync_list_asks_the_runtime_nothing() -> None:
    async def scenario() -> None:
        world = await running_world()
        await world.reconcile()  # learns the container in detail after its own changes
        await world.start()
        await world.observer.refresh()
        mark, patches = world.mark(), len(world.kube.status_patches)

        await world.reconcile()

        assert world.calls_since(mark) == []
        assert len(world.kube.status_patches) == patches

    asyncio.run(scenario())


def test_only_a_pass_that_leaves_the_workspace_ready_and_due_nothing_settles_it_for_the_resync() -> None:
    async def scenario() -> None:
        world = await running_world()
        await world.observer.refresh()
        assert world.observer.quiet() == {UID}  # the resync's list shows it as the pass left it

        world.runtime.fail("inspect_container", RuntimeUnavailable("Cannot connect to the Docker daemon"))
        assert (await world.reconcile(fresh=True)).result == "error"
        await world.observer.refresh()
        assert world.observer.quiet() == set()  # a failing pass: the resync wakes it

        assert await world.reconcile(fresh=True) == Result("success")
        await world.observer.refresh()
        assert world.observer.quiet() == {UID}

        starting = World()
        starting.runtime.healthcheck = True  # health "starting": a requeue follows it
        await starting.reconcile()
        await starting.observer.refresh()
        assert starting.observer.quiet() == set()
        starting.container().health = "healthy"
        await starting.reconcile(fresh=True)
        await starting.observer.refresh()
        assert starting.observer.quiet() == {UID}

    asyncio.run(scenario())


def test_a_status_written_by_someone_else_is_told_from_the_controllers_own() -> None:
    async def scenario() -> None:
        world = World()
        await world.start()
        assert not world.reconciler_status_is_not_ours({"phase": "Pending"})  # nothing known yet
        await world.reconcile()
        assert not world.reconciler_status_is_not_ours(world.status)
        assert world.reconciler_status_is_not_ours({**world.status, "phase": "Pending"})
        await world.reconcile()  # a pass that writes nothing leaves the same status stored
        assert not world.reconciler_status_is_not_ours(world.status)
        assert world.reconciler_status_is_not_ours({})

        first = copy.deepcopy(world.status)
        world.change_spec(tier=2)  # the next pass writes another status over the first
        await world.reconcile()
        assert world.status != first
        assert not world.reconciler_status_is_not_ours(world.status)
        # The watch is behind: the first write's own event, brought after the second write, is ours.
        assert not world.reconciler_status_is_not_ours(first)
        assert world.reconciler_status_is_not_ours({**first, "phase": "Pending"})

    asyncio.run(scenario())


def test_a_pass_that_reads_the_workspace_before_its_own_last_write_came_back_writes_no_more() -> None:
    """Woken (by a resync, say) while the pass before it wrote: the Workspace it reads predates that
    write. It builds on the write, not on the older status: no second write of the same news."""

    async def scenario() -> None:
        world = World()
        await world.reconcile()
        writes = len(world.kube.written_at)
        assert writes >= 1
        world.body["status"] = {}  # the watch has not brought the write yet
        await world.reconcile()
        assert len(world.kube.written_at) == writes
        world.body["status"] = {"phase": "Failed"}  # someone else's: written right
        await world.reconcile()
        assert len(world.kube.written_at) == writes + 1

    asyncio.run(scenario())


def test_a_restarted_controller_confirms_a_running_container_from_the_list_alone() -> None:
    """The status the last controller wrote describes the run the list shows: no inspect, no write."""

    async def scenario() -> None:
        world = await running_world()
        await world.reconcile()
        world.hosts = None  # a new controller: a new registry, observer and memory
        await world.start()
        await world.observer.refresh()
        mark, patches = world.mark(), len(world.kube.status_patches)

        await world.reconcile()

        # The image's digest is asked once per image and host (shared by its Workspaces); the container
        # is not inspected.
        assert world.ops_since(mark) == ["inspect_image"]
        assert len(world.kube.status_patches) == patches
        assert world.cond("Ready") == ("True", "ContainerRunning")

    asyncio.run(scenario())


def test_a_container_that_ran_again_while_no_controller_watched_is_inspected_after_a_restart() -> None:
    async def scenario() -> None:
        world = await running_world()
        await world.reconcile()
        # Docker's restart policy started it again while no controller ran: the status still tells of a
        # run that began an hour before this one.
        world.container().restart_count = 1
        world.body["status"]["container"]["startedAt"] = (datetime.now(UTC) - timedelta(hours=1)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        world.hosts = None
        await world.start()
        await world.observer.refresh()
        mark = world.mark()

        await world.reconcile()

        assert sorted(world.ops_since(mark)) == ["inspect_container", "inspect_image"]
        assert world.status["container"]["restartCount"] == 1

    asyncio.run(scenario())


# --- changes to the spec and to the container ----------------------------------------------------


def test_a_changed_spec_replaces_the_container_pulling_before_removing_and_keeping_the_volumes() -> None:
    async def scenario() -> None:
        # No pull window: the moving tag pulled for the first container is pulled again for the second.
        world = await running_world(settings=NO_PULL_WINDOW, env=[{"name": "GREETING", "value": "hello"}])
        old = world.container()
        old_hash = world.status["container"]["configHash"]
        mark, events = world.mark(), len(world.kube.events)

        world.change_spec(env=[{"name": "GREETING", "value": "bonjour"}])
        await world.reconcile()

        calls = world.calls_since(mark)
        assert index(calls, "pull_image") < index(calls, "remove_container", old.id)
        assert index(calls, "remove_container", old.id) < index(calls, "create_container")
        new = world.container()
        assert new.id != old.id
        assert old.id not in world.runtime.containers
        assert "GREETING=bonjour" in new.spec.env
        assert new.state == "running"
        assert "remove_volume" not in world.ops_since(mark)
        assert set(world.runtime.volumes) == {CONFIG_VOLUME, WORKSPACE_VOLUME}
        assert "Recreating" in world.reasons_since(events)
        assert world.reasons_since(events)[-2:] == ["Created", "Started"]
        assert world.status["container"]["id"] == new.id
        assert world.status["container"]["configHash"] != old_hash
        assert world.status["observedGeneration"] == 2
        assert world.cond("Ready") == ("True", "ContainerRunning")

    asyncio.run(scenario())


def test_a_container_stopped_by_a_daemon_going_down_is_left_to_the_daemon() -> None:
    """Its socket is gone (it still serves the connections made before): no start is sent into its
    shutdown, which would leave containerd's task behind and the container unable to start again."""

    async def scenario() -> None:
        world = await running_world()
        container = world.container()
        replace_container(container, state="exited", exit_code=143)
        world.runtime.fail("confirm_accepting", RuntimeUnavailable("Connection aborted: no such file"))
        mark = world.mark()

        await world.reconcile(fresh=True)

        assert world.writes_since(mark) == []
        assert container.state == "exited"
        assert world.cond("Synced") == ("False", "DockerUnavailable")

    asyncio.run(scenario())


def test_a_container_stopped_by_hand_is_started_again_as_the_same_container() -> None:
    async def scenario() -> None:
        world = await running_world()
        container = world.container()
        replace_container(container, state="exited", exit_code=137)
        mark, events = world.mark(), len(world.kube.events)

        await world.reconcile(fresh=True)

        assert world.writes_since(mark) == [("start_container", container.id)]
        assert world.container().id == container.id
        assert container.state == "running"
        assert world.reasons_since(events) == ["Restarted"]
        assert world.cond("Ready") == ("True", "ContainerRunning")

    asyncio.run(scenario())


def test_a_paused_container_is_unpaused() -> None:
    async def scenario() -> None:
        world = await running_world()
        container = world.container()
        replace_container(container, state="paused")
        mark, events = world.mark(), len(world.kube.events)

        await world.reconcile(fresh=True)

        assert world.writes_since(mark) == [("unpause_container", container.id)]
        assert container.state == "running"
        assert world.reasons_since(events) == ["Unpaused"]
        assert world.cond("Ready") == ("True", "ContainerRunning")

    asyncio.run(scenario())


def test_a_created_but_never_started_container_gets_its_configs_and_is_started() -> None:
    async def scenario() -> None:
        world = await running_world()
        container = world.container()
        replace_container(container, state="created", files={})
        mark, events = world.mark(), len(world.kube.events)

        await world.reconcile(fresh=True)

        calls = world.calls_since(mark)
        assert world.writes_since(mark) == [
            ("write_files", container.id),
            ("start_container", container.id),
        ]
        assert index(calls, "write_files") < index(calls, "start_container")
        assert container.files["/configs/config.yaml"] == b"model: x\n"
        assert container.state == "running"
        assert world.reasons_since(events) == ["Started"]

    asyncio.run(scenario())


def test_suspend_stops_and_keeps_the_container_and_resuming_starts_the_same_one() -> None:
    async def scenario() -> None:
        world = await running_world()
        container = world.container()
        mark, events = world.mark(), len(world.kube.events)

        world.change_spec(suspend=True)
        await world.reconcile()

        assert world.writes_since(mark) == [("stop_container", container.id)]
        assert world.runtime.containers[container.id].state == "exited"  # kept, not removed
        assert set(world.runtime.volumes) == {CONFIG_VOLUME, WORKSPACE_VOLUME}
        assert world.reasons_since(events) == ["Suspended"]
        assert world.status["phase"] == "Suspended"
        assert world.cond("Ready") == ("False", "Suspended")
        assert world.cond("Synced") == ("True", "ReconcilePaused")
        assert "endpoint" not in world.status
        assert "container" not in world.status

        mark = world.mark()
        await world.reconcile()  # suspended and stopped: nothing more to do
        assert world.writes_since(mark) == []

        world.change_spec(suspend=False)
        await world.reconcile()

        assert world.writes_since(mark) == [("start_container", container.id)]
        assert world.container().id == container.id
        assert container.state == "running"
        assert world.status["phase"] == "Running"
        assert world.cond("Ready") == ("True", "ContainerRunning")

    asyncio.run(scenario())


# --- what the controller cannot fix on its own ---------------------------------------------------


def test_a_foreign_container_holding_the_name_stalls_is_never_removed_and_its_removal_heals() -> None:
    async def scenario() -> None:
        world = World()
        foreign = world.runtime.add_foreign(NAME)
        await world.start()
        await world.observer.refresh()  # the resync's list shows only our containers

        await world.reconcile()

        assert world.cond("Stalled") == ("True", "NameConflict")
        assert world.status["phase"] == "Failed"
        assert world.warnings() == ["NameConflict"]

        # The next pass, even after a fresh resync list (which cannot show the foreign container),
        # inspects the name rather than trying to create again.
        await world.start()
        await world.observer.refresh()
        mark = world.mark()
        await world.reconcile()
        assert "inspect_container" in world.ops_since(mark)
        assert "create_container" not in world.ops_since(mark)
        assert world.cond("Stalled") == ("True", "NameConflict")
        assert world.warnings() == ["NameConflict"]  # warned once, not once per pass

        assert world.runtime.count("remove_container") == 0
        assert world.runtime.containers[foreign.id] is foreign

        del world.runtime.containers[foreign.id]  # the person removes it
        await world.start()
        await world.observer.refresh()
        await world.reconcile()

        assert world.container().id != foreign.id
        assert world.condition("Stalled") is None
        assert world.cond("Ready") == ("True", "ContainerRunning")

    asyncio.run(scenario())


def test_a_stall_warns_once_even_when_the_next_pass_reads_the_workspace_from_before_its_status() -> None:
    async def scenario() -> None:
        world = World()
        world.runtime.add_foreign(NAME)
        stale = WorkspaceObject.from_body(copy.deepcopy(world.body))  # no status yet

        await world.reconcile()
        assert world.warnings() == ["NameConflict"]

        # The watch event of the status write has not arrived: the loop passes the older object again.
        await world.reconciler.reconcile(stale)
        await world.events.settle()

        assert world.warnings() == ["NameConflict"]
        assert world.cond("Stalled") == ("True", "NameConflict")

    asyncio.run(scenario())


def test_a_configuration_the_daemon_rejects_is_not_tried_again_until_it_changes() -> None:
    async def scenario() -> None:
        world = World(env=[{"name": "MODE", "value": "a"}])
        world.runtime.fail("create_container", ContainerRuntimeError("invalid CPU count", 400))

        result = await world.reconcile()

        assert world.cond("Stalled") == ("True", "ContainerRejected")
        assert world.status["phase"] == "Failed"
        assert world.runtime.count("create_container") == 1
        assert world.runtime.by_name(NAME) is None
        assert result.result != "error"  # Stalled is not retried with backoff

        # The fault was one-shot: a create now would succeed, so these passes prove none is tried.
        for _ in range(2):
            await world.reconcile()
            assert world.runtime.count("create_container") == 1
            assert world.cond("Stalled") == ("True", "ContainerRejected")
        assert world.warnings() == ["ContainerRejected"]

        world.change_spec(env=[{"name": "MODE", "value": "b"}])
        await world.reconcile()

        assert world.runtime.count("create_container") == 2
        assert world.container().state == "running"
        assert world.condition("Stalled") is None
        assert world.cond("Ready") == ("True", "ContainerRunning")

    asyncio.run(scenario())


def test_an_image_no_registry_has_and_no_local_copy_stalls_image_not_found() -> None:
    async def scenario() -> None:
        world = World(registry={})

        await world.reconcile()

        assert world.cond("Stalled") == ("True", "ImageNotFound")
        assert world.runtime.count("pull_image") == 1
        assert world.runtime.count("create_container") == 0
        assert world.warnings() == ["ImageNotFound"]
        stalled = world.condition("Stalled")
        assert stalled is not None
        assert IMAGE in stalled["message"]

    asyncio.run(scenario())


def test_a_failed_pull_with_a_local_copy_and_no_policy_creates_from_the_local_copy() -> None:
    async def scenario() -> None:
        world = World(registry={})
        world.runtime.images[IMAGE] = ObservedImage(
            IMAGE_ID, (f"{PREFIX}/workspace-template-langgraph@{IMAGE_ID}",)
        )

        await world.reconcile()

        assert world.runtime.count("pull_image") == 1
        assert world.container().image == IMAGE
        assert world.container().state == "running"
        assert world.condition("Stalled") is None
        assert world.cond("Ready") == ("True", "ContainerRunning")
        assert world.kube.reasons() == ["Placed", "Created", "Started"]  # no Pulled: nothing was pulled

    asyncio.run(scenario())


def test_an_image_that_may_never_be_pulled_and_is_absent_stalls_without_a_pull() -> None:
    async def scenario() -> None:
        world = World(imagePullPolicy="Never")

        await world.reconcile()

        assert world.cond("Stalled") == ("True", "ImageNotFound")
        assert world.runtime.count("pull_image") == 0
        assert not world.runtime.containers  # the create went first, and the daemon refused it

    asyncio.run(scenario())


def test_an_unanswering_runtime_is_retried_with_growing_backoff_and_nothing_is_removed() -> None:
    async def scenario() -> None:
        world = await running_world()
        container = world.container()
        endpoint = world.status["endpoint"]
        world.runtime.fail(
            "inspect_container", RuntimeUnavailable("Cannot connect to the Docker daemon"), always=True
        )

        waits = []
        for _ in range(4):
            result = await world.reconcile(fresh=True)  # the stream's end, then each backoff's own pass
            assert result.result == "error"
            waits.append(result.requeue_after)
        assert waits == [2.0, 4.0, 8.0, 16.0]

        assert world.cond("Synced") == ("False", "DockerUnavailable")
        assert world.cond("Ready") == ("Unknown", "HostUnavailable")
        assert world.condition("Stalled") is None
        # What could not be seen is not reported gone.
        assert world.status["endpoint"] == endpoint
        assert world.status["container"]["id"] == container.id
        assert world.runtime.count("remove_container") == 0
        assert world.runtime.count("create_container") == 1
        assert world.runtime.containers[container.id].state == "running"
        assert world.warnings() == ["DockerUnavailable"]

        world.runtime.heal("inspect_container")
        assert await world.reconcile(fresh=True) == Result("success")
        assert world.cond("Synced") == ("True", "ReconcileSuccess")
        assert world.cond("Ready") == ("True", "ContainerRunning")

        world.runtime.fail("inspect_container", RuntimeUnavailable("Cannot connect to the Docker daemon"))
        assert await world.reconcile(fresh=True) == Result("error", 2.0)  # the backoff starts over

    asyncio.run(scenario())


def test_a_container_that_fails_to_start_is_left_created_and_started_by_the_next_pass() -> None:
    async def scenario() -> None:
        world = World()
        world.runtime.fail("start_container", ContainerRuntimeError("OCI runtime create failed", 500))

        result = await world.reconcile()

        container = world.container()
        assert container.state == "created"
        assert result == Result("error", 2.0)
        synced = world.condition("Synced")
        assert synced is not None
        assert synced["status"] == "False"
        assert "failed to start container" in synced["message"]
        assert world.condition("Stalled") is None
        assert world.runtime.count("remove_container") == 0
        assert world.status["container"]["state"] == "created"  # as the runtime now shows it

        mark = world.mark()
        await world.reconcile()

        assert world.writes_since(mark) == [
            ("write_files", container.id),
            ("start_container", container.id),
        ]
        assert world.container().id == container.id
        assert world.cond("Synced") == ("True", "ReconcileSuccess")
        assert world.cond("Ready") == ("True", "ContainerRunning")

    asyncio.run(scenario())


def test_a_container_that_failed_to_start_twice_is_replaced_by_a_new_one_on_the_same_volumes() -> None:
    """What a daemon that died uncleanly leaves behind: containerd still holds state of the container
    ("task ... already exists"), so every start of that container fails and a new one starts."""

    async def scenario() -> None:
        world = World()
        stale = ContainerRuntimeError("task 7c34: already exists", 500)
        world.runtime.fail("start_container", stale)
        world.runtime.fail("start_container", stale)

        assert (await world.reconcile()).result == "error"
        first = world.container()
        assert (await world.reconcile()).result == "error"
        assert world.container().id == first.id  # one failed start is retried on the same container
        volumes = set(world.runtime.volumes)

        mark = world.mark()
        await world.reconcile()

        replaced = world.container()
        assert replaced.id != first.id
        assert ("remove_container", first.id) in world.writes_since(mark)
        assert set(world.runtime.volumes) == volumes
        assert world.cond("Ready") == ("True", "ContainerRunning")
        assert world.cond("Synced") == ("True", "ReconcileSuccess")

    asyncio.run(scenario())


def test_a_long_pull_is_reported_as_pulling_while_it_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(actions, "PULL_REPORTED_AFTER", 0.01)

    async def scenario() -> None:
        world = World()
        world.runtime.hold_pulls = asyncio.Event()

        reconcile = asyncio.create_task(world.reconcile())

        def pulling(status: dict[str, Any]) -> bool:
            conditions = status.get("conditions", [])
            return any(c["type"] == "Reconciling" and c["reason"] == "Pulling" for c in conditions)

        await world.until_status(pulling, what="Reconciling/Pulling")
        assert not reconcile.done()
        assert world.status["phase"] == "Creating"
        assert world.runtime.count("create_container") == 0

        world.runtime.hold_pulls.set()
        assert await asyncio.wait_for(reconcile, 5.0) == Result("success")

        assert world.condition("Reconciling") is None
        assert world.cond("Ready") == ("True", "ContainerRunning")
        assert world.status["phase"] == "Running"

    asyncio.run(scenario())


def test_a_replacement_is_reported_as_rolling_out_while_the_new_image_is_pulled() -> None:
    async def scenario() -> None:
        world = await running_world(settings=NO_PULL_WINDOW)
        first = world.container()
        world.runtime.hold_pulls = asyncio.Event()
        world.change_spec(env=[{"name": "MODEL", "value": "next"}])

        reconcile = asyncio.create_task(world.reconcile())

        def rolling_out(status: dict[str, Any]) -> bool:
            conditions = status.get("conditions", [])
            return any(c["type"] == "Reconciling" and c["reason"] == "RollingOut" for c in conditions)

        await world.until_status(rolling_out, what="Reconciling/RollingOut")
        reconciling = world.condition("Reconciling")
        assert reconciling is not None
        assert "for a changed configuration" in reconciling["message"]
        assert world.container().id == first.id  # the old one serves while the image comes
        assert world.container().state == "running"

        world.runtime.hold_pulls.set()
        await asyncio.wait_for(reconcile, 5.0)
        assert world.container().id != first.id
        assert world.condition("Reconciling") is None
        assert world.cond("Ready") == ("True", "ContainerRunning")

    asyncio.run(scenario())


def test_a_crash_loop_under_dockers_restarts_stalls_and_is_not_recreated() -> None:
    async def scenario() -> None:
        world = await running_world()
        container = world.container()
        budget = world.settings.crashloop_restarts
        await world.reconcile(fresh=True)  # the first detailed look at this container

        container.restart_count = budget  # at the budget: not yet a loop
        await world.reconcile(fresh=True)
        assert world.condition("Stalled") is None

        container.restart_count = budget + 2
        await world.reconcile(fresh=True)

        assert world.cond("Stalled") == ("True", "CrashLoop")
        assert world.cond("Ready")[0] == "False"
        assert world.runtime.count("create_container") == 1
        assert world.runtime.count("remove_container") == 0
        assert world.container().id == container.id
        assert world.warnings() == ["CrashLoop"]

    asyncio.run(scenario())


def test_a_session_reset_empties_the_session_volume_once_and_is_echoed() -> None:
    async def scenario() -> None:
        world = await running_world(runtime="claude-code")
        assert SESSION_VOLUME in world.runtime.volumes
        assert world.runtime.count("remove_volume") == 0
        old = world.container()
        events = len(world.kube.events)

        world.change_spec(session={"resetRequestedAt": "reset-1"})
        await world.reconcile()

        assert world.runtime.count("remove_volume") == 1
        assert ("remove_volume", SESSION_VOLUME) in world.runtime.calls
        assert old.id not in world.runtime.containers
        assert world.container().state == "running"
        assert "SessionReset" in world.reasons_since(events)
        assert world.status["session"] == {"lastResetHandled": "reset-1"}
        assert world.cond("Ready") == ("True", "ContainerRunning")

        mark = world.mark()
        for _ in range(2):
            await world.reconcile(fresh=True)
        assert world.writes_since(mark) == []
        assert world.runtime.count("remove_volume") == 1
        assert world.status["session"] == {"lastResetHandled": "reset-1"}

    asyncio.run(scenario())


def test_a_session_reset_whose_pass_fails_after_emptying_the_volume_is_not_done_again() -> None:
    async def scenario() -> None:
        world = await running_world(runtime="claude-code")
        world.change_spec(session={"resetRequestedAt": "reset-1"})
        world.runtime.fail("start_container", ContainerRuntimeError("OCI runtime create failed", 500))

        assert (await world.reconcile()).result == "error"
        created = world.container()
        assert created.state == "created"
        assert world.runtime.count("remove_volume") == 1

        mark = world.mark()
        await world.reconcile()

        # The new container is simply started: no second recreate, the volume is not emptied again.
        assert world.writes_since(mark) == [("write_files", created.id), ("start_container", created.id)]
        assert world.runtime.count("remove_volume") == 1
        assert world.status["session"] == {"lastResetHandled": "reset-1"}
        assert world.cond("Ready") == ("True", "ContainerRunning")

    asyncio.run(scenario())


def test_a_stray_container_of_this_workspace_under_another_name_is_removed_before_create() -> None:
    async def scenario() -> None:
        world = World()
        stray = world.runtime.add_foreign(
            "renamed-by-hand",
            labels={
                **labels.owned_by_workspace(INSTANCE, UID),
                labels.NAMESPACE_LABEL: NS,
                labels.NAME_LABEL: WS,
            },
        )

        await world.reconcile()

        calls = world.runtime.calls
        assert index(calls, "remove_container", stray.id) < index(calls, "create_container")
        assert stray.id not in world.runtime.containers
        assert world.container().state == "running"
        assert "RemovedStray" in world.kube.reasons()

    asyncio.run(scenario())


# --- deletion ------------------------------------------------------------------------------------


def test_finalize_reports_terminating_then_removes_the_container_and_its_volumes() -> None:
    async def scenario() -> None:
        world = World()
        await world.reconcile()
        container = world.container()
        mark = world.mark()

        await world.finalize()

        removal = mark + index(world.calls_since(mark), "remove_container", container.id)
        terminating = [at for at, phase in world.kube.written_at if phase == "Terminating"]
        assert terminating, "no Terminating status was written"
        assert terminating[0] <= removal
        assert world.runtime.containers == {}
        assert world.runtime.volumes == {}
        assert {subject for op, subject in world.calls_since(mark) if op == "remove_volume"} == {
            CONFIG_VOLUME,
            WORKSPACE_VOLUME,
        }
        assert world.kube.reasons()[-1] == "Deleted"

        # A pass that arrives after the finalizer ran does not bring the container back.
        mark = world.mark()
        assert await world.reconcile() == Result("success")
        assert world.calls_since(mark) == []

    asyncio.run(scenario())


def test_finalize_with_retain_keeps_the_volumes() -> None:
    async def scenario() -> None:
        world = World(deletionPolicy="Retain")
        await world.reconcile()

        await world.finalize()

        assert world.runtime.containers == {}
        assert set(world.runtime.volumes) == {CONFIG_VOLUME, WORKSPACE_VOLUME}
        assert world.runtime.count("remove_volume") == 0
        deleted = world.kube.events[-1]
        assert deleted.reason == "Deleted"
        assert "retained" in deleted.message

    asyncio.run(scenario())


def test_a_runtime_failure_during_finalize_raises_and_reports_synced_false() -> None:
    async def scenario() -> None:
        world = World()
        await world.reconcile()
        container = world.container()
        world.runtime.fail("remove_container", RuntimeUnavailable("Cannot connect to the Docker daemon"))

        with pytest.raises(ContainerRuntimeError):
            await world.finalize()

        assert world.status["phase"] == "Terminating"
        assert world.cond("Synced") == ("False", "DockerUnavailable")
        assert world.runtime.containers[container.id] is container
        assert world.runtime.count("remove_volume") == 0

        await world.finalize()  # the finalizer is retried

        assert world.runtime.containers == {}
        assert world.runtime.volumes == {}

    asyncio.run(scenario())


# --- inputs --------------------------------------------------------------------------------------


def test_an_invalid_spec_stalls_without_any_runtime_call() -> None:
    async def scenario() -> None:
        world = World(tier=9)

        await world.reconcile()

        assert world.cond("Stalled") == ("True", "InvalidSpec")
        assert world.runtime.calls == []
        assert world.kube.secrets == {}
        stalled = world.condition("Stalled")
        assert stalled is not None
        assert "tier" in stalled["message"]

    asyncio.run(scenario())


def test_a_missing_secret_stalls_without_any_runtime_write_and_creating_it_heals() -> None:
    async def scenario() -> None:
        env = [{"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "api-key"}}}]
        world = World(env=env)

        await world.reconcile()

        assert world.cond("Stalled") == ("True", "SecretNotFound")
        assert world.writes_since(0) == []
        stalled = world.condition("Stalled")
        assert stalled is not None
        assert "creds" in stalled["message"]

        world.kube.add_secret(NS, "creds", {"api-key": "k-123"})
        await world.reconcile()

        assert world.condition("Stalled") is None
        assert "API_KEY=k-123" in world.container().spec.env
        assert world.cond("Ready") == ("True", "ContainerRunning")

    asyncio.run(scenario())


def test_a_flux_reconcile_request_is_echoed_once_handled() -> None:
    async def scenario() -> None:
        world = await running_world()
        world.body["metadata"]["annotations"] = {FLUX_REQUESTED_AT: "2026-02-03T04:05:06Z"}

        await world.reconcile()

        assert world.status["lastHandledReconcileAt"] == "2026-02-03T04:05:06Z"

    asyncio.run(scenario())


def test_no_secret_value_appears_in_events_statuses_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    env_secret = "env-secret-8c1f0d2e"
    token = "token-secret-3b9a7c4d"

    async def scenario() -> None:
        world = World(
            env=[{"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "api-key"}}}],
            authToken={"secretRef": {"name": "tok", "key": "token"}},
        )
        world.kube.add_secret(NS, "creds", {"api-key": env_secret})
        world.kube.add_secret(NS, "tok", {"token": token})

        await world.reconcile()  # created
        container = world.container()
        # The values did reach the container (or this test would prove nothing).
        assert f"API_KEY={env_secret}" in container.spec.env
        assert container.files["/configs/.auth_token"] == token.encode()

        world.change_spec(env=[*world.body["spec"]["env"], {"name": "MODE", "value": "b"}])
        world.runtime.fail("create_container", ContainerRuntimeError("invalid configuration", 400))
        await world.reconcile()  # replaced, create rejected
        world.change_spec(env=[*world.body["spec"]["env"], {"name": "MORE", "value": "c"}])
        world.runtime.fail("start_container", ContainerRuntimeError("failed to start", 500))
        await world.reconcile()  # created, start failed
        await world.reconcile()  # started
        world.runtime.fail("inspect_container", RuntimeUnavailable("daemon down"))
        await world.reconcile()
        await world.finalize()

        texts = [f"{e.reason} {e.message}" for e in world.kube.events]
        texts += [json.dumps(p) for p in world.kube.status_patches]
        texts += [json.dumps(s) for s in world.kube.statuses.values()]
        texts.append(caplog.text)
        assert len(world.kube.events) > 5
        for text in texts:
            assert env_secret not in text
            assert token not in text

    asyncio.run(scenario())


def test_a_runtime_error_quoting_a_secret_is_redacted_in_status_events_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An OCI runtime quotes a bad environment entry whole; the entry's value came from a Secret."""
    caplog.set_level(logging.DEBUG)
    env_secret = "s3cr\u00e9t-\u202e-value"
    token = "token-secret-3b9a7c4d"

    async def scenario() -> None:
        world = World(
            env=[{"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "api-key"}}}],
            authToken={"secretRef": {"name": "tok", "key": "token"}},
        )
        world.kube.add_secret(NS, "creds", {"api-key": env_secret})
        world.kube.add_secret(NS, "tok", {"token": token})
        quoted = json.dumps(f"API_KEY={env_secret}")  # as Go's %q would spell it: \u202e escaped
        world.runtime.fail(
            "start_container",
            ContainerRuntimeError(f"OCI runtime create failed: bad env {quoted}, token {token}", 500),
        )
        await world.reconcile()

        synced = world.condition("Synced")
        assert synced is not None
        assert "OCI runtime create failed: bad env" in synced["message"]
        assert "[redacted]" in synced["message"]
        texts = [f"{e.reason} {e.message}" for e in world.kube.events]
        texts += [json.dumps(s, ensure_ascii=False) for s in world.kube.statuses.values()]
        texts.append(caplog.text)
        for text in texts:
            for spelling in (env_secret, json.dumps(env_secret)[1:-1], token):
                assert spelling not in text

    asyncio.run(scenario())


def test_a_secret_value_with_a_nul_byte_stalls_without_quoting_it() -> None:
    async def scenario() -> None:
        world = World(
            env=[{"name": "BLOB", "valueFrom": {"secretKeyRef": {"name": "bin", "key": "blob"}}}],
        )
        world.kube.add_secret(NS, "bin", {"blob": "abc\x00def-secret"})
        await world.reconcile()

        assert world.cond("Stalled") == ("True", "InvalidConfig")
        stalled = world.condition("Stalled")
        assert stalled is not None
        assert "NUL byte" in stalled["message"]
        assert "def-secret" not in stalled["message"]
        assert world.runtime.count("create_container") == 0

    asyncio.run(scenario())


def test_a_session_reset_is_not_done_twice_by_a_controller_that_restarted_before_reporting_it() -> None:
    """The reset pass succeeded but its status write failed, then the controller restarted: the new
    container carries the plan's hash, which proves the reset was done."""

    async def scenario() -> None:
        world = await running_world(runtime="claude-code")
        world.change_spec(session={"resetRequestedAt": "reset-1"})

        async def refuse(*_: Any, **__: Any) -> None:
            raise ApiError(500, "InternalError", "etcd timeout")

        world.kube.patch_workspace_status = refuse  # type: ignore[method-assign]
        with contextlib.suppress(ApiError):
            await world.reconcile()
        assert world.runtime.count("remove_volume") == 1
        reset_container = world.container()

        del world.kube.patch_workspace_status
        world.hosts = None  # a new controller: a new registry, observer and ledger
        await world.start()
        mark = world.mark()
        await world.reconcile()

        assert world.writes_since(mark) == []
        assert world.runtime.count("remove_volume") == 1
        assert world.container().id == reset_container.id
        assert world.status["session"] == {"lastResetHandled": "reset-1"}

    asyncio.run(scenario())


def test_a_failed_restart_reports_the_stopped_container_not_the_one_seen_running_before() -> None:
    async def scenario() -> None:
        world = await running_world()
        container = world.container()
        replace_container(container, state="exited", exit_code=137)
        world.runtime.fail("start_container", ContainerRuntimeError("port is already allocated", 500))

        assert (await world.reconcile(fresh=True)).result == "error"

        assert world.status["container"]["state"] == "exited"
        assert world.status["container"]["exitCode"] == 137
        assert world.cond("Ready") == ("False", "ContainerExited")
        assert world.cond("Synced")[0] == "False"
        assert "failed to start container" in (world.condition("Synced") or {})["message"]

    asyncio.run(scenario())


# --- Docker calls per provision --------------------------------------------------------------------


PINNED = f"{PREFIX}/agent:1.2.3"
PINNED_ID = "sha256:" + "d" * 64


def test_an_image_already_on_the_host_costs_no_inspect_and_no_pull() -> None:
    async def scenario() -> None:
        world = World(registry={PINNED: PINNED_ID}, image=PINNED)
        await world.runtime.pull_image(PINNED)  # there before the Workspace
        await world.start()
        await world.observer.refresh()  # the resync's list, as the controller starts with
        mark = world.mark()

        await world.reconcile()

        assert world.cond("Ready") == ("True", "ContainerRunning")
        ops = world.ops_since(mark)
        assert "pull_image" not in ops
        # inspect_image once, by ID, for status.container.imageDigest; never by the reference
        assert [ref for op, ref in world.calls_since(mark) if op == "inspect_image"] == [PINNED_ID]
        assert ops.count("list_containers") == 0  # strays come from the resync's list
        assert ops.count("create_container") == 1
        # two volumes, create (with the files), start, and the inspect that reads the port: the raw SDK
        # doing the same work makes all but the inspect
        made = ["ensure_network", "ensure_volume", "ensure_volume", "create_container", "write_files"]
        assert sorted(ops) == sorted([*made, "start_container", "inspect_container", "inspect_image"])

    asyncio.run(scenario())


def test_an_image_not_on_the_host_is_pulled_when_the_create_says_so_then_created() -> None:
    async def scenario() -> None:
        world = World(registry={PINNED: PINNED_ID}, image=PINNED, imagePullPolicy="IfNotPresent")
        mark = world.mark()

        await world.reconcile()

        assert world.cond("Ready") == ("True", "ContainerRunning")
        ops = world.ops_since(mark)
        first_create = ops.index("create_container")
        assert ops.index("pull_image") > first_create
        assert ops.count("create_container") == 2  # refused (no such image), then made
        assert "Pulled" in world.kube.reasons()

    asyncio.run(scenario())


def test_an_image_a_create_found_missing_is_asked_for_again_without_another_create() -> None:
    async def scenario() -> None:
        world = World(registry={}, image=PINNED, imagePullPolicy="IfNotPresent")

        await world.reconcile()
        assert world.cond("Stalled") == ("True", "ImageNotFound")
        assert (world.runtime.count("create_container"), world.runtime.count("pull_image")) == (1, 1)

        for passes in (2, 3):  # resyncs of the stalled Workspace: the registry is asked, nothing created
            await world.reconcile()
            assert world.cond("Stalled") == ("True", "ImageNotFound")
            assert (world.runtime.count("create_container"), world.runtime.count("pull_image")) == (1, passes)

        world.runtime.registry[PINNED] = PINNED_ID  # pushed
        await world.reconcile()
        assert world.cond("Ready") == ("True", "ContainerRunning")
        assert world.runtime.count("create_container") == 2

    asyncio.run(scenario())


def test_an_image_that_may_never_be_pulled_is_not_created_again_until_it_is_on_the_host() -> None:
    async def scenario() -> None:
        world = World(registry={PINNED: PINNED_ID}, image=PINNED, imagePullPolicy="Never")

        await world.reconcile()
        await world.reconcile()
        assert world.cond("Stalled") == ("True", "ImageNotFound")
        assert world.runtime.count("create_container") == 1
        assert world.runtime.count("pull_image") == 0

        await world.runtime.pull_image(PINNED)  # loaded by the host's operator
        await world.reconcile()
        assert world.cond("Ready") == ("True", "ContainerRunning")
        assert world.runtime.count("create_container") == 2

    asyncio.run(scenario())


def test_a_moving_tag_pulled_within_the_pull_window_is_not_pulled_again() -> None:
    async def scenario() -> None:
        world = await running_world()  # a :latest image, pulled for its first container
        assert world.runtime.count("pull_image") == 1
        world.runtime.containers.pop(world.container().id)  # removed by hand

        await world.reconcile(fresh=True)  # its destroy event

        assert world.runtime.count("create_container") == 2
        assert world.cond("Ready") == ("True", "ContainerRunning")
        assert world.runtime.count("pull_image") == 1  # the pull of a moment ago serves

        without = await running_world(settings=NO_PULL_WINDOW)  # WC_PULL_WINDOW=0: the Go provisioner's rule
        without.runtime.containers.pop(without.container().id)
        await without.reconcile(fresh=True)
        assert without.runtime.count("pull_image") == 2

    asyncio.run(scenario())


def test_pull_policy_always_pulls_for_every_create_whatever_the_pull_window() -> None:
    async def scenario() -> None:
        world = await running_world(imagePullPolicy="Always")
        world.runtime.containers.pop(world.container().id)  # removed by hand, at once

        await world.reconcile(fresh=True)  # its destroy event

        assert world.cond("Ready") == ("True", "ContainerRunning")
        assert world.runtime.count("pull_image") == 2

    asyncio.run(scenario())


def test_a_container_renamed_since_the_last_list_is_removed_by_id_before_the_new_one_is_made() -> None:
    async def scenario() -> None:
        world = await running_world()
        await world.observer.refresh()  # the list shows it under its own name
        renamed = world.container()
        await world.runtime.rename_container(renamed.id, "by-hand")  # by hand: no touch the observer sees
        mark = world.mark()

        await world.reconcile(fresh=True)  # the rename event: its name holds nothing now

        assert ("remove_container", renamed.id) in world.calls_since(mark)
        assert [c.name for c in world.runtime.containers.values()] == [NAME]
        assert world.cond("Ready") == ("True", "ContainerRunning")

    asyncio.run(scenario())


def test_a_container_made_after_the_last_list_and_renamed_is_found_by_a_new_list() -> None:
    async def scenario() -> None:
        world = World()
        await world.start()
        await world.observer.refresh()  # the resync's list, taken before the container existed
        await world.reconcile()
        renamed = world.container()
        await world.runtime.rename_container(renamed.id, f"{NAME}-old")
        mark = world.mark()

        await world.reconcile(fresh=True)

        assert world.ops_since(mark).count("list_containers") == 1  # one list, for everyone
        assert ("remove_container", renamed.id) in world.calls_since(mark)
        assert [c.name for c in world.runtime.containers.values()] == [NAME]

    asyncio.run(scenario())
