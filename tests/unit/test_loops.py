"""The per-Workspace loops: the finalizer they own, the passes they run, and how a deletion ends them.

`WorkspaceLoops` runs against `FakeKube` (the finalizer patches are applied as RFC 6902, a failed test
is a 422) with stand-ins for the reconcile and the finalize that record every call and can be held on an
`asyncio.Event` (a pull that never ends). The watch is simulated: a test changes the object the fake API
server holds, as a user or another controller would, and re-delivers it with `on_event`.

Every wait has a deadline (`eventually`); a check that something does *not* happen watches for `NOTHING`
seconds (`stays`). No test sleeps to let something happen.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from controller.kube import finalizer
from controller.kube.finalizer import FINALIZER
from controller.kube.workspace_object import WorkspaceObject
from controller.port.errors import ContainerRuntimeError
from controller.reconcile import loops as loops_module
from controller.reconcile.loops import WorkspaceLoops
from controller.reconcile.reconciler import Result
from controller.reconcile.triggers import Triggers
from tests.support.fake_kube import FakeKube

UID_A, UID_B = "uid-a", "uid-b"
NS = "ns"
DEADLINE = 5.0
"""Seconds within which something that must happen does."""
NOTHING = 0.05
"""How long a check that something does not happen watches."""
TICK = 0.001
"""The retry delays here (finalizer patch, finalize backoff), and the polling interval."""
DELETED_AT = "2024-05-01T12:00:00Z"
KOPF_ANNOTATION = "kopf.zalando.org/last-handled-configuration"


def key(uid: str) -> tuple[str, str]:
    return NS, f"w-{uid}"


def workspace(
    uid: str = UID_A,
    *,
    finalizers: list[str] | None = None,
    annotations: dict[str, str] | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    """A Workspace object as the API server stores it, at resourceVersion 1 and generation 1."""
    meta: dict[str, Any] = {
        "uid": uid,
        "namespace": NS,
        "name": key(uid)[1],
        "generation": 1,
        "resourceVersion": "1",
    }
    if finalizers is not None:
        meta["finalizers"] = finalizers
    if annotations is not None:
        meta["annotations"] = annotations
    if deleting:
        meta["deletionTimestamp"] = DELETED_AT
    return {"metadata": meta, "spec": {"runtime": "langgraph"}}


# -- edits by others, as the API server would store them ---------------------------------------------


def new_generation(body: dict[str, Any]) -> None:
    """A spec change: the API server bumps metadata.generation."""
    body["metadata"]["generation"] += 1
    body["spec"]["model"] = f"model-{body['metadata']['generation']}"


def status_written(body: dict[str, Any]) -> None:
    """The controller's own status write: observedGeneration caught up, nothing asked of it."""
    body["status"] = {"observedGeneration": body["metadata"]["generation"], "phase": "Running"}


def delete_requested(body: dict[str, Any]) -> None:
    body["metadata"]["deletionTimestamp"] = DELETED_AT


def other_finalizer_first(body: dict[str, Any]) -> None:
    """Another controller puts its finalizer at the head of the list (ours moves one place on)."""
    body["metadata"]["finalizers"] = ["example.com/other", *body["metadata"].get("finalizers", [])]


def labelled(body: dict[str, Any]) -> None:
    """A metadata-only edit (no new generation)."""
    body["metadata"].setdefault("labels", {})["team"] = "blue"


# -- the stand-ins and the simulated watch -----------------------------------------------------------

Step = Result | asyncio.Event | Exception
"""What one reconcile does: return this Result, hold until this Event is set, or raise this."""


@dataclass
class Pass:
    obj: WorkspaceObject
    fresh: bool
    finalizer_stored: bool
    """Whether the API server held the finalizer when the pass began."""
    patches_before: int
    cancelled: bool = False


@dataclass
class Finalized:
    obj: WorkspaceObject
    finalizer_stored: bool
    patches_before: int


class HeldKube(FakeKube):
    """FakeKube that, while `hold` is set to an unset Event, applies a patch at once but answers it only
    once the Event is set (the watch may deliver newer objects meanwhile); `applied` tells when."""

    def __init__(self) -> None:
        super().__init__()
        self.hold: asyncio.Event | None = None
        self.applied: asyncio.Event | None = None

    async def patch_workspace(
        self, namespace: str, name: str, operations: list[dict[str, Any]]
    ) -> dict[str, Any]:
        updated = await super().patch_workspace(namespace, name, operations)
        if self.hold is not None:
            if self.applied is not None:
                self.applied.set()
            await self.hold.wait()
        return updated


class Harness:
    def __init__(self) -> None:
        self.kube = HeldKube()
        self.triggers = Triggers()
        self.scripts: dict[str, list[Step]] = defaultdict(list)
        """Per uid, what the next passes do (then: Result("success"), i.e. wait for a trigger)."""
        self.finalize_failures: dict[str, int] = defaultdict(int)
        """Per uid, how many more finalize calls raise ContainerRuntimeError."""
        self.passes: dict[str, list[Pass]] = defaultdict(list)
        self.finalized: dict[str, list[Finalized]] = defaultdict(list)
        self.forgotten: list[str] = []
        self.counts: list[int] = []
        self.ours: dict[str, Any] = {}
        """Per uid, the status "the reconciler" last left stored (what `foreign_status` compares with)."""
        self.loops = WorkspaceLoops(
            kube=self.kube,
            triggers=self.triggers,
            reconcile=self.reconcile,
            finalize=self.finalize,
            forget=lambda ref: self.forgotten.append(ref.uid),
            on_count=self.counts.append,
            foreign_status=lambda uid, status: uid in self.ours and status != self.ours[uid],
        )

    def _finalizer_stored(self, obj: WorkspaceObject) -> bool:
        stored = self.kube.objects.get((obj.ref.namespace, obj.ref.name))
        return stored is not None and finalizer.has_finalizer(stored)

    async def reconcile(self, obj: WorkspaceObject, fresh: bool) -> Result:
        record = Pass(obj, fresh, self._finalizer_stored(obj), len(self.kube.workspace_patches))
        self.passes[obj.ref.uid].append(record)
        script = self.scripts[obj.ref.uid]
        step: Step = script.pop(0) if script else Result("success")
        if isinstance(step, Exception):
            raise step
        if isinstance(step, asyncio.Event):
            try:
                await step.wait()
            except asyncio.CancelledError:
                record.cancelled = True
                raise
            return Result("success")
        return step

    async def finalize(self, obj: WorkspaceObject) -> None:
        uid = obj.ref.uid
        self.finalized[uid].append(
            Finalized(obj, self._finalizer_stored(obj), len(self.kube.workspace_patches))
        )
        if self.finalize_failures[uid] > 0:
            self.finalize_failures[uid] -= 1
            raise ContainerRuntimeError("removing the container failed", 500)

    def stored(self, uid: str) -> dict[str, Any]:
        return self.kube.objects[key(uid)]

    def create(self, body: dict[str, Any]) -> None:
        """The Workspace exists on the API server and the watch delivers it."""
        uid = body["metadata"]["uid"]
        self.kube.objects[key(uid)] = copy.deepcopy(body)
        self.deliver(uid, "ADDED")

    def edit(self, uid: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Someone else changes the stored object (a new resourceVersion); the watch has not told yet."""
        body = self.stored(uid)
        change(body)
        body["metadata"]["resourceVersion"] = str(int(body["metadata"]["resourceVersion"]) + 1)

    def deliver(self, uid: str, event_type: str = "MODIFIED") -> None:
        """The watch delivers the object as the API server now holds it."""
        self.loops.on_event(event_type, copy.deepcopy(self.stored(uid)))

    def finalizers(self, uid: str) -> list[str]:
        return list(self.stored(uid)["metadata"].get("finalizers") or [])

    def patches_tested_versions(self) -> list[str | None]:
        return [
            op["value"]
            for ops in self.kube.workspace_patches
            for op in ops
            if op["op"] == "test" and op["path"] == "/metadata/resourceVersion"
        ]


async def eventually(probe: Callable[[], object], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while not probe():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: did not happen within {DEADLINE}s")
        await asyncio.sleep(TICK)


async def stays(probe: Callable[[], object], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + NOTHING
    while asyncio.get_running_loop().time() < deadline:
        assert probe(), what
        await asyncio.sleep(TICK)
    assert probe(), what


def run(scenario: Callable[[Harness], Awaitable[None]]) -> Harness:
    """Run one scenario on a fresh event loop; the loops are closed whatever happens."""

    async def main() -> Harness:
        h = Harness()
        try:
            await scenario(h)
        finally:
            await h.loops.close()
        return h

    return asyncio.run(main())


@pytest.fixture(autouse=True)
def backoffs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Retries here come after TICK seconds; returns the failure counts `backoff` was asked about."""
    asked: list[int] = []

    def quick_backoff(failures: int) -> float:
        asked.append(failures)
        return TICK

    monkeypatch.setattr(loops_module, "FINALIZER_RETRY", TICK)
    monkeypatch.setattr(loops_module, "backoff", quick_backoff)
    return asked


# -- the finalizer before the first pass --------------------------------------------------------------


def test_the_finalizer_is_added_before_the_first_pass_which_sees_the_patched_object() -> None:
    body = workspace(annotations={KOPF_ANNOTATION: "{}", "example.com/keep": "yes"})

    async def scenario(h: Harness) -> None:
        h.create(body)
        await eventually(lambda: h.passes[UID_A], "the first pass")

        assert h.kube.workspace_patches == [finalizer.add_finalizer(body)]
        first = h.passes[UID_A][0]
        assert first.finalizer_stored
        assert first.patches_before == 1
        # The pass got the object the patch returned (kopf's annotation gone), not the watched one.
        assert first.obj.annotations == {"example.com/keep": "yes"}
        assert h.finalizers(UID_A) == [FINALIZER]
        assert KOPF_ANNOTATION not in h.stored(UID_A)["metadata"]["annotations"]

    run(scenario)


def test_a_workspace_already_carrying_the_finalizer_is_reconciled_without_a_patch() -> None:
    async def scenario(h: Harness) -> None:
        h.create(workspace(finalizers=["example.com/other", FINALIZER]))
        await eventually(lambda: h.passes[UID_A], "the first pass")

        assert h.kube.workspace_patches == []
        assert h.passes[UID_A][0].obj.ref.name == key(UID_A)[1]
        assert h.passes[UID_A][0].fresh is False

    run(scenario)


# -- when passes run ----------------------------------------------------------------------------------


def test_wakes_during_a_pass_coalesce_into_one_more_pass() -> None:
    async def scenario(h: Harness) -> None:
        pulling = asyncio.Event()
        h.scripts[UID_A] = [pulling]
        h.create(workspace(finalizers=[FINALIZER]))
        await eventually(lambda: h.passes[UID_A], "the first pass")

        for _ in range(3):
            h.edit(UID_A, new_generation)
            h.deliver(UID_A)
        pulling.set()

        await eventually(lambda: len(h.passes[UID_A]) == 2, "the second pass")
        assert h.passes[UID_A][1].obj.generation == 4  # the newest object, once
        await stays(lambda: len(h.passes[UID_A]) == 2, "no third pass: three wakes were one")

        h.edit(UID_A, new_generation)
        h.deliver(UID_A)
        await eventually(lambda: len(h.passes[UID_A]) == 3, "a later change still wakes the loop")

    run(scenario)


def test_requeue_after_brings_another_pass_without_any_event() -> None:
    async def scenario(h: Harness) -> None:
        h.scripts[UID_A] = [Result("requeue_after", TICK)]
        h.create(workspace(finalizers=[FINALIZER]))

        await eventually(lambda: len(h.passes[UID_A]) == 2, "the requeued pass")
        # The second pass asked for nothing more (requeue_after None): the loop waits for a trigger.
        await stays(lambda: len(h.passes[UID_A]) == 2, "no pass without a requeue or an event")

    run(scenario)


def test_requeue_after_zero_goes_again_at_once() -> None:
    async def scenario(h: Harness) -> None:
        h.scripts[UID_A] = [Result("requeue_after", 0), Result("requeue_after", 0)]
        h.create(workspace(finalizers=[FINALIZER]))

        await eventually(lambda: len(h.passes[UID_A]) == 3, "two immediate passes more")
        await stays(lambda: len(h.passes[UID_A]) == 3, "then the loop waits")

    run(scenario)


def test_an_event_that_needs_no_attention_causes_no_pass() -> None:
    async def scenario(h: Harness) -> None:
        h.create(workspace(finalizers=[FINALIZER]))
        await eventually(lambda: h.passes[UID_A], "the first pass")

        h.edit(UID_A, status_written)  # our own status write: observedGeneration == generation
        h.deliver(UID_A)
        h.edit(UID_A, labelled)
        h.deliver(UID_A)
        await stays(lambda: len(h.passes[UID_A]) == 1, "no pass for our own status write")

        h.edit(UID_A, new_generation)
        h.deliver(UID_A)
        await eventually(lambda: len(h.passes[UID_A]) == 2, "a pass for a new generation")
        second = h.passes[UID_A][1].obj
        assert second.generation == 2
        assert second.status == {"observedGeneration": 1, "phase": "Running"}

    run(scenario)


def test_a_status_someone_else_wrote_brings_a_pass_and_our_own_does_not() -> None:
    async def scenario(h: Harness) -> None:
        h.create(workspace(finalizers=[FINALIZER]))
        await eventually(lambda: h.passes[UID_A], "the first pass")
        h.edit(UID_A, status_written)
        h.ours[UID_A] = dict(h.stored(UID_A)["status"])
        h.deliver(UID_A)
        await stays(lambda: len(h.passes[UID_A]) == 1, "no pass for our own status write")

        h.edit(UID_A, lambda body: body["status"].update(phase="Pending"))  # kubectl patch --subresource
        h.deliver(UID_A)
        await eventually(lambda: len(h.passes[UID_A]) == 2, "a pass that writes the truth again")

    run(scenario)


def test_a_docker_event_asks_the_next_pass_for_a_fresh_observation() -> None:
    async def scenario(h: Harness) -> None:
        h.create(workspace(finalizers=[FINALIZER]))
        await eventually(lambda: h.passes[UID_A], "the first pass")

        assert h.triggers.wake(UID_A, fresh_observation=True)
        await eventually(lambda: len(h.passes[UID_A]) == 2, "the pass the Docker event asked for")
        assert [p.fresh for p in h.passes[UID_A]] == [False, True]

    run(scenario)


# -- deletion -----------------------------------------------------------------------------------------


def test_a_deletion_cancels_a_pass_that_never_ends_then_finalizes_and_releases_the_finalizer() -> None:
    async def scenario(h: Harness) -> None:
        h.scripts[UID_A] = [asyncio.Event()]  # a pull from a registry that never answers
        h.create(workspace(finalizers=[FINALIZER]))
        await eventually(lambda: h.passes[UID_A], "the first pass")

        h.edit(UID_A, delete_requested)
        deleting = copy.deepcopy(h.stored(UID_A))
        h.deliver(UID_A)

        await eventually(lambda: len(h.loops) == 0, "the loop ends")
        assert h.passes[UID_A][0].cancelled
        assert len(h.passes[UID_A]) == 1
        [finalized] = h.finalized[UID_A]
        assert finalized.obj.deleting
        assert finalized.finalizer_stored
        assert finalized.patches_before == 0  # the finalizer was released after the finalize, not before
        assert h.kube.workspace_patches == [finalizer.remove_finalizer(deleting)]
        assert h.finalizers(UID_A) == []
        assert h.counts[-1] == 0
        assert h.forgotten == []  # only DELETED forgets

    run(scenario)


def test_a_deletion_delivered_while_the_finalizer_is_being_added_is_not_lost() -> None:
    async def scenario(h: Harness) -> None:
        h.kube.hold, h.kube.applied = asyncio.Event(), asyncio.Event()
        h.create(workspace())
        await asyncio.wait_for(h.kube.applied.wait(), DEADLINE)  # the finalizer is on the object

        # The answer is slow: the watch delivers the deletion that came after the patch first.
        h.edit(UID_A, delete_requested)
        h.deliver(UID_A)
        h.kube.hold.set()

        await eventually(lambda: len(h.loops) == 0, "the loop ends")
        assert h.passes[UID_A] == []  # the object the patch returned is older than the deletion
        assert len(h.finalized[UID_A]) == 1
        assert h.finalizers(UID_A) == []

    run(scenario)


def test_a_deletion_wakes_a_loop_waiting_for_its_requeue() -> None:
    async def scenario(h: Harness) -> None:
        h.scripts[UID_A] = [Result("requeue_after", 3600.0)]
        h.create(workspace(finalizers=[FINALIZER]))
        await eventually(lambda: h.passes[UID_A], "the first pass")

        h.edit(UID_A, delete_requested)
        h.deliver(UID_A)

        await eventually(lambda: h.finalizers(UID_A) == [], "the finalizer released")
        assert len(h.finalized[UID_A]) == 1
        assert len(h.passes[UID_A]) == 1

    run(scenario)


def test_a_failing_finalize_is_retried_with_backoff_and_the_finalizer_stays_until_it_succeeds(
    backoffs: list[int],
) -> None:
    async def scenario(h: Harness) -> None:
        h.finalize_failures[UID_A] = 2
        h.create(workspace(finalizers=[FINALIZER]))
        await eventually(lambda: h.passes[UID_A], "the first pass")

        h.edit(UID_A, delete_requested)
        h.deliver(UID_A)

        await eventually(lambda: len(h.loops) == 0, "the loop ends")
        attempts = h.finalized[UID_A]
        assert len(attempts) == 3
        assert all(a.finalizer_stored and a.patches_before == 0 for a in attempts)
        assert backoffs == [0, 1]
        assert len(h.kube.workspace_patches) == 1
        assert h.finalizers(UID_A) == []

    run(scenario)


def test_the_finalizer_is_never_released_while_finalize_keeps_failing() -> None:
    async def scenario(h: Harness) -> None:
        h.finalize_failures[UID_A] = 1_000_000
        h.create(workspace(finalizers=[FINALIZER], deleting=True))

        await eventually(lambda: len(h.finalized[UID_A]) >= 5, "finalize retried")
        assert h.kube.workspace_patches == []
        assert h.finalizers(UID_A) == [FINALIZER]
        assert len(h.loops) == 1  # still trying

    run(scenario)


def test_a_workspace_first_seen_deleting_with_the_finalizer_is_finalized_without_a_pass() -> None:
    body = workspace(finalizers=["example.com/other", FINALIZER], deleting=True)

    async def scenario(h: Harness) -> None:
        h.create(body)

        await eventually(lambda: len(h.loops) == 0, "the loop ends")
        assert h.passes[UID_A] == []
        assert len(h.finalized[UID_A]) == 1
        assert h.kube.workspace_patches == [finalizer.remove_finalizer(body)]
        assert h.finalizers(UID_A) == ["example.com/other"]

    run(scenario)


def test_a_workspace_first_seen_deleting_without_the_finalizer_is_neither_reconciled_nor_finalized() -> None:
    async def scenario(h: Harness) -> None:
        h.create(workspace(finalizers=["example.com/other"], deleting=True))

        await eventually(lambda: len(h.loops) == 0, "the loop ends")
        assert h.passes[UID_A] == []
        assert h.finalized[UID_A] == []
        assert h.kube.workspace_patches == []
        assert h.counts == [1, 0]

    run(scenario)


def test_deleted_cancels_the_running_loop_and_forgets_the_workspace() -> None:
    async def scenario(h: Harness) -> None:
        h.scripts[UID_A] = [asyncio.Event()]
        h.create(workspace(finalizers=[FINALIZER]))
        await eventually(lambda: h.passes[UID_A], "the first pass")

        h.deliver(UID_A, "DELETED")

        assert h.forgotten == [UID_A]
        assert len(h.loops) == 0
        await eventually(lambda: h.passes[UID_A][0].cancelled, "the pass cancelled")
        await eventually(lambda: not h.triggers.wake(UID_A), "the trigger unregistered")
        assert h.finalized[UID_A] == []
        assert h.kube.workspace_patches == []
        assert h.counts[-1] == 0

    run(scenario)


# -- finalizer patches the API server does not take ---------------------------------------------------


def test_a_workspace_gone_when_the_finalizer_is_added_ends_its_loop() -> None:
    async def scenario(h: Harness) -> None:
        h.loops.on_event("ADDED", workspace())  # the API server no longer holds it: 404

        await eventually(lambda: len(h.loops) == 0, "the loop ends")
        assert len(h.kube.workspace_patches) == 1  # not retried
        assert h.passes[UID_A] == []
        assert h.forgotten == []

    run(scenario)


def test_a_workspace_gone_when_the_finalizer_is_released_ends_its_loop() -> None:
    async def scenario(h: Harness) -> None:
        h.create(workspace(finalizers=[FINALIZER], deleting=True))
        # Gone before the patch arrives (another client removed every finalizer meanwhile).
        h.kube.objects.clear()

        await eventually(lambda: len(h.loops) == 0, "the loop ends")
        assert len(h.finalized[UID_A]) == 1
        assert len(h.kube.workspace_patches) == 1

    run(scenario)


def test_a_refused_finalizer_patch_is_retried_on_the_newer_object() -> None:
    body = workspace()

    async def scenario(h: Harness) -> None:
        h.create(body)
        # The watch had delivered version 1; someone labelled the Workspace before the patch arrived.
        h.edit(UID_A, labelled)

        await eventually(lambda: len(h.kube.workspace_patches) >= 3, "the refused patch tried again")
        assert h.passes[UID_A] == []  # no pass while the finalizer is not on the object
        assert h.finalizers(UID_A) == []
        assert len(h.loops) == 1

        h.deliver(UID_A)  # version 2
        await eventually(lambda: h.passes[UID_A], "the first pass")

        versions = h.patches_tested_versions()
        assert versions[-1] == "2"
        assert set(versions[:-1]) == {"1"}
        assert h.finalizers(UID_A) == [FINALIZER]
        assert h.stored(UID_A)["metadata"]["labels"] == {"team": "blue"}  # the edit is not undone
        assert h.passes[UID_A][0].finalizer_stored

    run(scenario)


def test_a_refused_finalizer_release_is_retried_and_keeps_the_finalizer_another_controller_added() -> None:
    async def scenario(h: Harness) -> None:
        h.create(workspace(finalizers=[FINALIZER], deleting=True))
        # Another controller put its finalizer first: ours is now at index 1, the watch has not told.
        h.edit(UID_A, other_finalizer_first)

        await eventually(lambda: len(h.kube.workspace_patches) >= 2, "the refused release tried again")
        assert h.finalizers(UID_A) == ["example.com/other", FINALIZER]
        assert len(h.loops) == 1

        h.deliver(UID_A)
        await eventually(lambda: len(h.loops) == 0, "the loop ends")
        assert h.finalizers(UID_A) == ["example.com/other"]
        assert h.kube.workspace_patches[-1] == [
            {"op": "test", "path": "/metadata/finalizers/1", "value": FINALIZER},
            {"op": "remove", "path": "/metadata/finalizers/1"},
        ]
        assert h.passes[UID_A] == []

    run(scenario)


def test_an_unreachable_api_server_is_retried() -> None:
    async def scenario(h: Harness) -> None:
        h.kube.unreachable = True
        h.create(workspace())
        # Status 0 (no answer) is not a 404: the loop keeps trying rather than ending.
        await stays(lambda: len(h.loops) == 1 and h.passes[UID_A] == [], "the loop waits, no pass")

        h.kube.unreachable = False
        await eventually(lambda: h.passes[UID_A], "the first pass once the API server answers")
        assert h.finalizers(UID_A) == [FINALIZER]

    run(scenario)


# -- failures, shutdown, count ------------------------------------------------------------------------


def test_an_unexpected_exception_is_logged_and_that_loop_goes_on_when_woken(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug in one pass neither ends its loop (a deletion must still be seen through) nor anyone else's."""

    async def scenario(h: Harness) -> None:
        h.scripts[UID_A] = [RuntimeError("a bug")]
        h.create(workspace(UID_A, finalizers=[FINALIZER]))
        h.create(workspace(UID_B, finalizers=[FINALIZER]))

        await eventually(lambda: h.passes[UID_B] and len(h.passes[UID_A]) == 1, "both loops ran once")
        # Logged by the loop itself (not left to asyncio's "Task exception was never retrieved").
        await eventually(
            lambda: [
                r
                for r in caplog.records
                if r.name == loops_module.__name__ and r.levelno == logging.ERROR and r.exc_info
            ],
            "the failure logged",
        )
        failures = [r for r in caplog.records if r.name == loops_module.__name__ and r.exc_info]
        assert len(failures) == 1
        assert UID_A in failures[0].getMessage()
        assert failures[0].exc_info is not None
        assert isinstance(failures[0].exc_info[1], RuntimeError)
        assert len(h.loops) == 2  # A's loop is still there, waiting

        h.edit(UID_B, new_generation)
        h.deliver(UID_B)
        await eventually(lambda: len(h.passes[UID_B]) == 2, "B's loop still works")

        assert h.triggers.wake(UID_A)  # a resync or a change wakes A's loop, which goes on
        await eventually(lambda: len(h.passes[UID_A]) == 2, "A's loop went on")

    with caplog.at_level(logging.ERROR, logger=loops_module.__name__):
        run(scenario)


def test_close_cancels_every_loop() -> None:
    async def scenario(h: Harness) -> None:
        h.scripts[UID_A] = [asyncio.Event()]
        h.create(workspace(UID_A, finalizers=[FINALIZER]))  # held in a pass
        h.create(workspace(UID_B, finalizers=[FINALIZER]))  # waiting for a trigger
        await eventually(lambda: h.passes[UID_A] and h.passes[UID_B], "both passes")

        await h.loops.close()

        assert len(h.loops) == 0
        assert h.passes[UID_A][0].cancelled
        assert h.counts[-1] == 0
        assert not h.triggers.wake(UID_A)
        assert not h.triggers.wake(UID_B)
        assert h.forgotten == []
        assert h.finalized == {}

    run(scenario)


def test_on_count_is_told_the_number_of_loops() -> None:
    async def scenario(h: Harness) -> None:
        h.create(workspace(UID_A, finalizers=[FINALIZER]))
        assert (h.counts[-1], len(h.loops)) == (1, 1)
        h.create(workspace(UID_B, finalizers=[FINALIZER]))
        assert (h.counts[-1], len(h.loops)) == (2, 2)
        await eventually(lambda: h.passes[UID_A] and h.passes[UID_B], "both passes")

        h.edit(UID_A, new_generation)
        h.deliver(UID_A)  # an event for a running loop starts none
        await eventually(lambda: len(h.passes[UID_A]) == 2, "A's second pass")
        assert (h.counts[-1], len(h.loops)) == (2, 2)

        h.deliver(UID_A, "DELETED")
        assert (h.counts[-1], len(h.loops)) == (1, 1)

        h.edit(UID_B, delete_requested)
        h.deliver(UID_B)
        await eventually(lambda: len(h.loops) == 0, "B's loop ends once finalized")
        assert h.counts[-1] == 0
        # Repeats aside, the count went up one loop at a time and down one loop at a time.
        changes = [c for i, c in enumerate(h.counts) if i == 0 or c != h.counts[i - 1]]
        assert changes == [1, 2, 1, 0]

    run(scenario)


def test_an_older_body_delivered_during_the_release_does_not_finalize_again() -> None:
    async def scenario(h: Harness) -> None:
        before_release: list[dict[str, object]] = []
        plain = h.finalize

        async def finalize(obj: WorkspaceObject) -> None:
            await plain(obj)
            # As Reconciler.finalize does: it writes status Terminating (a new resourceVersion).
            h.edit(UID_A, status_written)
            before_release.append(copy.deepcopy(h.stored(UID_A)))

        h.loops._finalize = finalize
        h.create(workspace(finalizers=[FINALIZER]))
        await eventually(lambda: h.passes[UID_A], "first pass")
        h.kube.hold, h.kube.applied = asyncio.Event(), asyncio.Event()
        h.edit(UID_A, delete_requested)
        h.deliver(UID_A)
        await asyncio.wait_for(h.kube.applied.wait(), DEADLINE)  # finalizer released on the server
        # The watch now delivers the status write that happened *before* the release.
        h.loops.on_event("MODIFIED", before_release[0])
        held = h.kube.hold
        h.kube.hold = None  # later patches are answered at once
        held.set()  # the release is answered
        await eventually(lambda: len(h.loops) == 0, "loop ends")
        assert h.finalizers(UID_A) == []
        assert len(h.finalized[UID_A]) == 1, f"finalize ran {len(h.finalized[UID_A])} times"

    run(scenario)


def test_close_before_a_loop_first_ran_reports_zero_loops_and_unregisters_it() -> None:
    async def scenario(h: Harness) -> None:
        h.create(workspace(finalizers=[FINALIZER]))
        await h.loops.close()
        assert len(h.loops) == 0
        assert h.counts[-1] == 0, f"on_count last told {h.counts[-1]}"

    run(scenario)


def test_deleted_before_a_loop_first_ran_leaves_no_trigger_registered() -> None:
    async def scenario(h: Harness) -> None:
        h.create(workspace(finalizers=[FINALIZER]))
        h.deliver(UID_A, "DELETED")
        assert len(h.triggers) == 0, "the trigger of a gone Workspace is still registered"

    run(scenario)


def test_a_failing_pass_is_not_retried_at_once_by_its_own_docker_events_nor_the_resync() -> None:
    """No hot loop: each failed pass creates and removes containers (events for it) and a resync wakes
    everyone; a loop backing off waits its backoff out, and a change to the Workspace still ends it."""

    async def scenario(h: Harness) -> None:
        h.scripts[UID_A] = [Result("error", DEADLINE * 4)] * 2
        h.create(workspace(finalizers=[FINALIZER]))
        await eventually(lambda: len(h.passes[UID_A]) == 1, "the first pass")
        for _ in range(20):
            h.triggers.wake(UID_A, fresh_observation=True, routine=True)  # create, start, die, destroy
            h.triggers.wake_all(routine=True)  # the resync
            await asyncio.sleep(TICK)
        await stays(lambda: len(h.passes[UID_A]) == 1, "no pass before the backoff ends")
        h.edit(UID_A, new_generation)
        h.deliver(UID_A)  # the user fixed the spec
        await eventually(lambda: len(h.passes[UID_A]) == 2, "a pass for the change, at once")
        assert h.passes[UID_A][1].fresh  # the events were noted: it inspects

    run(scenario)


def test_the_watch_bringing_the_version_a_pass_started_from_asks_for_no_second_pass() -> None:
    """The loop adds its finalizer and passes on the object the API server answered with; the watch then
    brings that same version (no status yet, so it looks unobserved): no pass for it. A newer one does."""

    async def scenario(h: Harness) -> None:
        h.create(workspace())
        await eventually(lambda: len(h.passes[UID_A]) == 1, "the first pass")
        assert h.finalizers(UID_A) == [FINALIZER]
        h.deliver(UID_A)  # the finalizer patch, as the watch delivers it
        await stays(lambda: len(h.passes[UID_A]) == 1, "no second pass for the same version")
        h.edit(UID_A, new_generation)
        h.deliver(UID_A)
        await eventually(lambda: len(h.passes[UID_A]) == 2, "a pass for the new generation")

    run(scenario)
