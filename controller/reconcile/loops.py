"""One loop per Workspace: it reconciles when woken, and it sees the Workspace through its deletion.

The loops are the controller's own asyncio tasks, fed by the Workspace watch (`on_event`). A loop:

1. adds the controller's finalizer before the first pass creates anything on Docker;
2. reconciles whenever it is woken (a change to the Workspace, a Docker event, the resync, its own
   requeue), one pass at a time, triggers coalescing as in a controller-runtime work queue;
3. once the Workspace is being deleted, stops waiting for any pass in flight (a pull from a registry
   that does not answer must not hold a deletion up), removes the Docker objects, retrying with
   backoff while Docker fails, and only then releases the finalizer.

A Workspace first seen while it is being deleted (the controller restarted meanwhile) is finished the
same way. Nothing of this state lives in the Workspace object but the finalizer itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from controller.core.backoff import backoff
from controller.core.identity import WorkspaceRef
from controller.kube import finalizer
from controller.kube.client import ApiError, KubeApi
from controller.kube.workspace_object import WorkspaceObject, kept, needs_attention
from controller.port.errors import ContainerRuntimeError
from controller.reconcile.reconciler import Result
from controller.reconcile.triggers import Triggers

log = logging.getLogger(__name__)

FINALIZER_RETRY = 2.0
"""Seconds before a finalizer patch refused by a concurrent edit is tried again on the newer object."""
RECOVERY_DELAY = 30.0
"""Seconds before a loop goes on after an unexpected failure (a resync or a change wakes it sooner)."""

Reconcile = Callable[[WorkspaceObject, bool], Coroutine[Any, Any, Result]]
Finalize = Callable[[WorkspaceObject], Coroutine[Any, Any, None]]


class WorkspaceLoops:
    def __init__(
        self,
        *,
        kube: KubeApi,
        triggers: Triggers,
        reconcile: Reconcile,
        finalize: Finalize,
        forget: Callable[[WorkspaceRef], None],
        on_count: Callable[[int], None] = lambda _: None,
        foreign_status: Callable[[str, Mapping[str, Any]], bool] = lambda _uid, _status: False,
    ) -> None:
        self._kube = kube
        self._triggers = triggers
        self._reconcile = reconcile
        self._finalize = finalize
        self._forget = forget
        self._on_count = on_count
        self._foreign_status = foreign_status
        self._bodies: dict[str, Mapping[str, Any]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._passes: dict[str, asyncio.Task[Result]] = {}
        self._passed_version: dict[str, str] = {}  # uid -> resourceVersion the last pass started from

    def __len__(self) -> int:
        return len(self._tasks)

    # -- what the watch says -------------------------------------------------------------------------

    def on_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        uid = str((body.get("metadata") or {}).get("uid", ""))
        if not uid:
            return
        if event_type == "DELETED":
            # Gone from the API: whatever was left to do is no longer the controller's to do.
            self._bodies.pop(uid, None)
            task = self._tasks.pop(uid, None)
            if task is not None:
                task.cancel()
            self._triggers.unregister(uid)
            self._forget(WorkspaceObject.from_body(body).ref)
            self._counted()
            return
        before = self._bodies.get(uid)
        self._bodies[uid] = body = kept(body)
        ref = WorkspaceObject.from_body(body).ref
        self._triggers.alias(ref.owner_uid, uid)
        rebound = before is not None and WorkspaceObject.from_body(before).ref.slot != ref.slot
        if uid not in self._tasks:
            self._triggers.register(uid, str((body.get("metadata") or {}).get("namespace", "")))
            self._tasks[uid] = asyncio.create_task(self._run(uid), name=f"workspace-{uid}")
            self._counted()
            return
        if WorkspaceObject.from_body(body).deleting:
            in_flight = self._passes.get(uid)
            if in_flight is not None:
                in_flight.cancel()
        # The very version a pass already started from asks for nothing more (the watch brings the
        # finalizer this loop added, say, while the pass that followed it is under way).
        version = (body.get("metadata") or {}).get("resourceVersion")
        if rebound or (
            needs_attention(body) and (version is None or version != self._passed_version.get(uid))
        ):
            self._triggers.wake(uid)
        elif self._foreign_status(uid, body.get("status") or {}):
            self._triggers.wake(uid)  # a status written by someone else: the next pass writes the truth

    async def close(self) -> None:
        tasks = dict(self._tasks)
        for task in tasks.values():
            task.cancel()
        for uid, task in tasks.items():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            self._triggers.unregister(uid)
        self._tasks.clear()
        self._counted()

    # -- one Workspace ----------------------------------------------------------------------------------

    async def _run(self, uid: str) -> None:
        try:
            while (body := self._bodies.get(uid)) is not None:
                try:
                    if await self._step(uid, body):
                        return
                except asyncio.CancelledError:
                    raise
                except Exception:  # one Workspace's failure must not end its loop, nor anyone else's
                    log.exception("the loop of workspace %s failed; it goes on in %.0fs", uid, RECOVERY_DELAY)
                    await self._triggers.wait(uid, RECOVERY_DELAY)
        finally:
            self._triggers.unregister(uid)
            self._passed_version.pop(uid, None)
            if self._tasks.get(uid) is asyncio.current_task():
                del self._tasks[uid]
            self._counted()

    async def _step(self, uid: str, body: Mapping[str, Any]) -> bool:
        """One turn of the loop; True once the Workspace is done with (deleted and released)."""
        obj = WorkspaceObject.from_body(body)
        if obj.deleting:
            await self._delete(uid)
            return True
        if not finalizer.has_finalizer(body):
            await self._patch(obj, finalizer.add_finalizer(body), "add the finalizer")
            return False
        version = (body.get("metadata") or {}).get("resourceVersion")
        if version is not None:
            self._passed_version[uid] = str(version)
        result = await self._pass(uid, obj)
        if result is not None:
            log.debug("%s: pass %s, next look in %s", obj.ref, result.result, result.requeue_after)
        if result is not None and result.requeue_after != 0:
            await self._triggers.wait(uid, result.requeue_after, backing_off=result.result == "error")
        return False  # a pass cancelled by a deletion, or asked to go again at once, goes on at once

    async def _pass(self, uid: str, obj: WorkspaceObject) -> Result | None:
        """One reconcile, which a deletion cancels; None when it was cancelled that way."""
        current = asyncio.create_task(self._reconcile(obj, self._triggers.take_fresh_observation(uid)))
        self._passes[uid] = current
        try:
            return await asyncio.shield(current)
        except asyncio.CancelledError:
            if not current.cancelled():
                current.cancel()
                raise  # the loop itself was cancelled
            return None
        finally:
            self._passes.pop(uid, None)

    async def _delete(self, uid: str) -> None:
        """Remove the Docker objects (retried while Docker fails), then release the finalizer."""
        failures = 0
        cleaned = False
        while (body := self._bodies.get(uid)) is not None and finalizer.has_finalizer(body):
            obj = WorkspaceObject.from_body(body)
            if not cleaned:
                try:
                    await self._finalize(obj)
                except ContainerRuntimeError as exc:
                    delay = backoff(failures)
                    failures += 1
                    log.warning(
                        "%s: removing the Docker objects failed, retry in %.0fs: %s", obj.ref, delay, exc
                    )
                    await self._triggers.wait(uid, delay)
                    continue
                cleaned = True
            if await self._patch(obj, finalizer.remove_finalizer(body), "release the finalizer"):
                return  # released: the apiserver deletes the object once no finalizer is left

    async def _patch(self, obj: WorkspaceObject, ops: list[dict[str, Any]], what: str) -> bool:
        """Apply a finalizer patch; True when it was applied. The object the apiserver answers with
        replaces ours unless the watch has meanwhile brought one that already has the change."""
        uid = obj.ref.uid
        try:
            updated = await self._kube.patch_workspace(obj.ref.namespace, obj.ref.name, ops)
        except ApiError as exc:
            if exc.not_found:
                self._bodies.pop(uid, None)
                return False
            # A concurrent edit (the test of the patch failed) or an unreachable API server: try again on
            # the newer object the watch brings, or after a moment.
            log.info("%s: could not %s (%s); trying again", obj.ref, what, exc)
            await self._triggers.wait(uid, FINALIZER_RETRY)
            return False
        current = self._bodies.get(uid)
        if current is not None and finalizer.has_finalizer(current) != finalizer.has_finalizer(updated):
            self._bodies[uid] = kept(updated)
        return True

    def _counted(self) -> None:
        self._on_count(len(self._tasks))
