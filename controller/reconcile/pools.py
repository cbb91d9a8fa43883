"""The WorkspacePool manager: keeps each pool's warm slots made and started, and binds a new Workspace
to one (`core.pools` holds the rules).

One background task runs pool passes: every POOL_PERIOD seconds while any pool exists, and at once when
a pool changes or a slot is taken. A pass lists each host's containers (one call), makes the slots a pool
lacks (placed like Workspaces, at most MAKE_AT_ONCE at a time), removes those beyond its size, made from
an older template, or of a pool that is gone, and writes each pool's status (replicas, readyReplicas,
the selector of the scale subresource).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from controller import metrics
from controller.api.workspace import AUTH_TOKEN_FILE, Placement
from controller.core import labels, naming
from controller.core.causes import Cause, Reason
from controller.core.conditions import format_time
from controller.core.configfiles import new_auth_token
from controller.core.decide import Create
from controller.core.identity import WorkspaceRef
from controller.core.placement import Request, Unschedulable
from controller.core.plan import ContainerPlan
from controller.core.pools import (
    SLOT_ANNOTATION,
    PoolStep,
    Slot,
    bound_slot,
    pick,
    pool_step,
    slot_ref,
    warm_slots,
)
from controller.core.templates import template_name
from controller.kube.client import ApiError
from controller.port.errors import ContainerRuntimeError
from controller.port.values import FileTree
from controller.reconcile.actions import ActionRunner, Journal, StepFailed
from controller.reconcile.hosts import Host, HostRegistry
from controller.settings import ControllerSettings

log = logging.getLogger(__name__)

POOL_PERIOD = 2.0
"""Seconds between pool passes while any pool exists."""
MAKE_AT_ONCE = 4
"""Slots made at the same time, over all pools (the rest wait for the next pass)."""
READY_DEADLINE = 300.0
"""A slot not Ready this long after it was made is removed and made again."""
REFILL_AFTER = 1.0
"""Slots are made again only once no slot was taken for this long: a burst of claims is not slowed by
the creates of its refill (they share the daemon)."""
POOLS_SETTLED_AFTER = 30.0
"""After start-up, the watch has listed every pool by then: only later is a slot whose pool is not known
taken for one of a deleted pool."""

SlotPlanner = Callable[[str], ContainerPlan | Cause]
"""A slot's plan from its ID (pure), for one pool's template as it is now."""


@dataclasses.dataclass(frozen=True)
class SlotTemplate:
    """What a pool's slots are made from now: their plan (from a slot ID), room and placement."""

    plan: SlotPlanner
    request: Request
    placement: Placement


PlannerFactory = Callable[[str, str, Mapping[str, Any]], Awaitable[SlotTemplate | Cause]]
"""(namespace, pool, spec) -> what the pool's slots are made from, or why they cannot be made."""


def _key(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


class PoolManager:
    def __init__(
        self,
        *,
        hosts: HostRegistry,
        kube: Any,
        settings: ControllerSettings,
        planner: PlannerFactory,
    ) -> None:
        self._hosts = hosts
        self._kube = kube
        self._settings = settings
        self._planner = planner
        self._pools: dict[tuple[str, str], Mapping[str, Any]] = {}
        # (namespace, slot id) -> uid of the Workspace bound to it: a slot is bound only by a Workspace of
        # its own namespace (an annotation written by hand elsewhere binds nothing).
        self._bound: dict[tuple[str, str], str] = {}
        self._reserved: dict[str, str] = {}  # slot id -> uid of the Workspace binding it now
        # slot id -> the token this controller made it with (in memory only: a slot made before a restart,
        # or by another replica, has its Workspace's token written when it is bound).
        self._tokens: dict[str, str] = {}
        self._spent: set[str] = set()  # slots whose token a Workspace not bound to them was given
        self._making: dict[tuple[str, str], set[str]] = {}
        self._slots: list[Slot] = []
        self._claimed: dict[tuple[str, str], int] = {}  # bound slots still listed, per pool
        self._written: dict[tuple[str, str], dict[str, Any]] = {}
        self._wake = asyncio.Event()
        self._started = time.monotonic()
        self._claimed_at = 0.0
        self._making_sem = asyncio.Semaphore(MAKE_AT_ONCE)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what the watches say ---------------------------------------------------------------------------

    def pool_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        key = _key(body)
        if event_type == "DELETED":
            self._pools.pop(key, None)
            self._written.pop(key, None)
            for state in ("ready", "starting"):
                with contextlib.suppress(KeyError):
                    metrics.POOL_SLOTS.remove(*key, state)
        else:
            self._pools[key] = body
        self._wake.set()

    def template_changed(self) -> None:
        """A WorkspaceTemplate changed: the pools of it make their slots afresh (the next pass)."""
        if self._pools:
            self._wake.set()

    def workspace_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Which slots Workspaces are bound to (their annotation or status says)."""
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        spec = body.get("spec") or {}
        given = spec.get("workspaceID")
        platform_id = given if isinstance(given, str) else ""
        slot = bound_slot(
            meta.get("annotations") or {}, body.get("status") or {}, uid=uid, platform_id=platform_id
        )
        namespace = str(meta.get("namespace", ""))
        for known in [k for k, owner in self._bound.items() if owner == uid and k != (namespace, slot)]:
            del self._bound[known]
        if slot and event_type != "DELETED":
            self._bound[(namespace, slot)] = uid

    def _bound_in(self, namespace: str) -> set[str]:
        return {slot for (where, slot) in self._bound if where == namespace}

    def pools_of(self, namespace: str, template: str) -> list[str]:
        return sorted(
            name
            for (ns, name), body in self._pools.items()
            if ns == namespace and template_name(body.get("spec") or {}) == template
        )

    # -- binding ---------------------------------------------------------------------------------------

    def candidates(self, namespace: str, template: str) -> list[Slot]:
        pools = self.pools_of(namespace, template)
        if not pools:
            return []
        return pick(
            self._slots,
            namespace=namespace,
            pool_names=pools,
            taken=set(self._reserved) | self._bound_in(namespace),
        )

    def hold(self, slot: Slot, uid: str) -> str | None:
        """Keep `slot` for the Workspace `uid` while its inputs are read (no other claim is handed it
        meanwhile); the token the slot was made with, which that Workspace's token Secret is then created
        with so that binding writes nothing. None when the slot is another's or its token is not known."""
        if (slot.namespace, slot.id) in self._bound or self._reserved.setdefault(slot.id, uid) != uid:
            return None
        return self._tokens.get(slot.id)

    def let_go(self, slot_id: str, uid: str, *, token_given: bool = False) -> None:
        """End `uid`'s hold of a slot. `token_given`: the slot's token went to a Workspace that was not
        bound to it (made cold, or bound to another slot), so the slot is no one's to hand out any more:
        the next pass removes it and makes another."""
        if self._reserved.get(slot_id) == uid:
            del self._reserved[slot_id]
        if token_given and self._tokens.pop(slot_id, None) is not None:
            self._spent.add(slot_id)
            self._wake.set()

    async def bind(self, workspace: WorkspaceRef, slot: Slot, plan: ContainerPlan) -> bool:
        """Bind `workspace` to `slot`, whose container `plan` (the Workspace's own, under the slot's
        identity) is. In this order: the Workspace is annotated (from then on the slot is its, whatever
        happens next: no one else is handed it, and the orphan sweep counts it live), the container takes
        the Workspace's name for it, the Workspace's token is written into it unless the slot was made
        with that very token (`hold`). False when the slot could not be had
        (gone, taken, the annotation refused): a cold create then. True once annotated: when renaming or
        writing the token then fails, the container is removed and the Workspace's pass makes it anew
        under the slot's identity (on the slot's volumes)."""
        holder = self._reserved.get(slot.id, workspace.uid)
        if (slot.namespace, slot.id) in self._bound or holder != workspace.uid:
            return False
        host = self._hosts.get(slot.host)
        if host is None or not host.ready:
            return False
        self._reserved[slot.id] = workspace.uid
        try:
            await self._kube.annotate_workspace(
                workspace.namespace, workspace.name, workspace.uid, {SLOT_ANNOTATION: slot.id}
            )
        except ApiError as exc:
            log.info("%s: warm slot %s not bound (%s); a container is made for it", workspace, slot.id, exc)
            return False
        finally:
            self.let_go(slot.id, workspace.uid)
        self._bound[(slot.namespace, slot.id)] = workspace.uid
        self._slots = [s for s in self._slots if s.id != slot.id]
        self._hosts.scheduler.release(slot.id)
        self._claimed_at = time.monotonic()  # refilled once the claims pause (REFILL_AFTER)
        warm = naming.warm_name(slot.id)
        try:
            with host.observer.changing(plan.name), host.observer.changing(warm):
                await host.runtime.rename_container(slot.container_id, plan.name)
            token = plan.files.files.get(AUTH_TOKEN_FILE)
            made_with = self._tokens.pop(slot.id, None)
            if token is not None and (made_with is None or token.content != made_with.encode()):
                # Not the one the slot was made with (its Workspace's Secret existed before, or the slot
                # is older than this controller): written as it is, no look for one first (a look costs
                # what the copy does, about 50 ms on a daemon's archive endpoint).
                written = dataclasses.replace(token, if_absent=False)
                await host.runtime.write_files(
                    slot.container_id, FileTree(plan.files.root, {AUTH_TOKEN_FILE: written})
                )
        except ContainerRuntimeError as exc:
            log.warning("%s: warm slot %s could not be taken over (%s); made anew", workspace, slot.id, exc)
            with contextlib.suppress(ContainerRuntimeError), host.observer.changing(plan.name):
                await host.runtime.remove_container(slot.container_id)
        return True

    # -- passes ----------------------------------------------------------------------------------------

    async def run_forever(self) -> None:
        while True:
            try:
                await self.pass_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("warm pool pass failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POOL_PERIOD if self._pools else None)
            self._wake.clear()

    async def pass_once(self) -> None:
        listed = await self._list()
        if listed is None:
            return
        slots, claimed = listed
        self._slots = slots
        self._claimed = claimed
        making = set().union(*self._making.values()) if self._making else set()
        listed_ids = {s.id for s in slots} | making
        for gone in [slot_id for slot_id in self._tokens if slot_id not in listed_ids]:
            del self._tokens[gone]  # removed by hand, or by another replica
        self._spent &= listed_ids
        settled = time.monotonic() - self._started > POOLS_SETTLED_AFTER
        for slot in slots:
            if (
                (slot.namespace, slot.pool) not in self._pools
                and settled
                and (slot.namespace, slot.id) not in self._bound
            ):
                host = self._hosts.get(slot.host)
                if host is not None:
                    await self._discard(host, slot.id, namespace=slot.namespace, pool=slot.pool)
        for key, body in list(self._pools.items()):
            await self._pool_pass(key, body, [s for s in slots if (s.namespace, s.pool) == key])

    async def _list(self) -> tuple[list[Slot], dict[tuple[str, str], int]] | None:
        slots: list[Slot] = []
        claimed: dict[tuple[str, str], int] = {}
        for host in self._hosts.all():
            if not host.ready:
                continue
            try:
                snapshot = await host.observer.refresh()
            except ContainerRuntimeError:
                continue
            entries = []
            for container in snapshot.by_name.values():
                ready = container.running and container.health in (None, "healthy")
                entries.append(
                    (
                        container.name,
                        container.id,
                        container.state,
                        container.labels,
                        ready,
                        container.created or 0.0,
                    )
                )
                slot = container.labels.get(labels.SLOT_LABEL)
                owner = labels.read_owner(container.labels, self._settings.instance)
                if slot and owner is not None and container.name == naming.container_name(slot):
                    key = (owner.namespace, owner.name)
                    claimed[key] = claimed.get(key, 0) + 1
            slots.extend(warm_slots(entries, instance=self._settings.instance, host=host.name))
        return slots, claimed

    async def _pool_pass(self, key: tuple[str, str], body: Mapping[str, Any], slots: list[Slot]) -> None:
        namespace, pool = key
        spec = body.get("spec") or {}
        replicas = int(spec.get("replicas", 1) or 0)
        template = template_name(spec)
        problem: Cause | None = None
        made: SlotTemplate | Cause = Cause(Reason.TEMPLATE_NOT_FOUND, "the pool names no template")
        if template is not None:
            made = await self._planner(namespace, pool, {"templateRef": {"name": template}})
        stale: set[str] = set()
        if not isinstance(made, Cause):
            probe = made.plan(str(uuid.uuid4()))  # the template as a container (any slot's is alike)
            if isinstance(probe, Cause):
                made = probe
        if isinstance(made, Cause):
            problem = made
        else:
            for slot in slots:
                plan = made.plan(slot.id)
                if isinstance(plan, Cause) or plan.config_hash != slot.config_hash:
                    stale.add(slot.id)
        now = time.time()
        making = self._making.setdefault(key, set())
        late = {s.id for s in slots if not s.ready and now - s.created > READY_DEADLINE}
        excluded = set(self._reserved) | self._bound_in(namespace)
        step: PoolStep = pool_step(
            [s for s in slots if s.id not in making],
            replicas=max(0, replicas - len(making)),
            current=problem is None,
            stale=stale | late | self._spent,
            excluded=excluded,
        )
        for slot, why in step.remove:
            host = self._hosts.get(slot.host)
            if host is not None:
                log.info("WorkspacePool %s/%s: removing warm slot %s (%s)", namespace, pool, slot.id, why)
                await self._discard(host, slot.id, namespace=namespace, pool=pool)
        if not isinstance(made, Cause):
            for slot in slots:
                if slot.id not in excluded:
                    self._hosts.scheduler.record(slot.id, slot.host, made.request)
            if time.monotonic() - self._claimed_at >= REFILL_AFTER:
                for _ in range(step.create):
                    slot_id = str(uuid.uuid4())
                    making.add(slot_id)
                    task = asyncio.create_task(self._make(key, slot_id, made), name=f"slot-{slot_id}")
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        gone = {r.id for r, _ in step.remove} | excluded
        kept = [s for s in slots if s.id not in gone]
        await self._write_status(key, body, kept, problem)

    async def _make(self, key: tuple[str, str], slot_id: str, made: SlotTemplate) -> None:
        namespace, pool = key
        try:
            async with self._making_sem:
                plan = made.plan(slot_id)
                if isinstance(plan, Cause):
                    return  # the pass found none can be made (its status says why)
                placed = await self._hosts.scheduler.place(slot_id, made.request, made.placement)
                if isinstance(placed, Unschedulable):
                    self._hosts.scheduler.release(slot_id)
                    log.info(
                        "WorkspacePool %s/%s: no room for a warm slot: %s",
                        namespace,
                        pool,
                        placed.cause.message,
                    )
                    return
                host = self._hosts.get(placed.host)
                if host is None or not host.ready:
                    self._hosts.scheduler.release(slot_id)
                    return
                token = new_auth_token() if AUTH_TOKEN_FILE in plan.files.files else None
                warm = warm_plan(plan, token)
                runner = ActionRunner(
                    host.runtime,
                    host.observer,
                    instance=self._settings.instance,
                    report_progress=_no_progress,
                    post_soon=lambda *_: None,
                    host=host.name,
                    pulls=host.pulls,
                    pull_window=self._settings.pull_window_seconds,
                )
                try:
                    await runner.run(Create(), warm, None, Journal())
                except (StepFailed, ContainerRuntimeError) as exc:
                    log.warning(
                        "WorkspacePool %s/%s: warm slot %s not made: %s", namespace, pool, slot_id, exc
                    )
                    await self._discard(host, slot_id, namespace=namespace, pool=pool)
                else:
                    if token is not None:
                        self._tokens[slot_id] = token
        except Exception:
            log.exception("WorkspacePool %s/%s: making warm slot %s failed", namespace, pool, slot_id)
        finally:
            self._making.get(key, set()).discard(slot_id)
            self._wake.set()

    async def _discard(self, host: Host, slot_id: str, *, namespace: str, pool: str) -> None:
        """Remove a slot's container and volumes (its objects by its labels: nothing else's)."""
        ref = slot_ref(namespace, pool, slot_id)
        selector = labels.owned_by(self._settings.instance, ref)
        try:
            for container in await host.runtime.list_containers(selector):
                with host.observer.changing(container.name):
                    await host.runtime.remove_container(container.id)
            for volume in await host.runtime.list_volumes(selector):
                await host.runtime.remove_volume(volume.name)
        except ContainerRuntimeError as exc:
            log.warning("warm slot %s not removed yet: %s", slot_id, exc)
            return
        self._hosts.scheduler.release(slot_id)
        self._tokens.pop(slot_id, None)
        self._spent.discard(slot_id)
        self._slots = [s for s in self._slots if s.id != slot_id]

    async def _write_status(
        self, key: tuple[str, str], body: Mapping[str, Any], slots: list[Slot], problem: Cause | None
    ) -> None:
        namespace, pool = key
        meta = body.get("metadata") or {}
        replicas = int((body.get("spec") or {}).get("replicas", 1) or 0)
        ready = sum(1 for s in slots if s.ready)
        if problem is not None:
            condition = ("False", problem.reason, problem.message)
        elif ready >= replicas:
            condition = ("True", "Ready", f"{ready} warm workspace(s) ready")
        else:
            condition = ("False", "Filling", f"{ready} of {replicas} warm workspace(s) ready")
        previous = self._written.get(key, {})
        old = {c.get("type"): c for c in previous.get("conditions", [])}.get("Ready", {})
        since = old.get("lastTransitionTime") if old.get("status") == condition[0] else None
        status = {
            "replicas": len(slots),
            "readyReplicas": ready,
            "claimed": self._claimed.get(key, 0),
            "selector": f"{labels.NAME_LABEL}={pool},{labels.NAMESPACE_LABEL}={namespace}",
            "observedGeneration": meta.get("generation"),
            "conditions": [
                {
                    "type": "Ready",
                    "status": condition[0],
                    "reason": condition[1],
                    "message": condition[2],
                    "lastTransitionTime": since or format_time(datetime.now(UTC)),
                    "observedGeneration": meta.get("generation"),
                }
            ],
        }
        metrics.POOL_SLOTS.labels(namespace, pool, "ready").set(ready)
        metrics.POOL_SLOTS.labels(namespace, pool, "starting").set(len(slots) - ready)
        if status == previous:
            return
        try:
            await self._kube.patch_pool_status(namespace, pool, status)
        except ApiError as exc:
            log.info("WorkspacePool %s/%s: status not written (%s)", namespace, pool, exc)
            return
        self._written[key] = status

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _no_progress(_: Cause) -> None:
    return None


def warm_plan(plan: ContainerPlan, token: str | None) -> ContainerPlan:
    """A slot's plan as it is made warm: under its warm name, with a token of its own (which becomes the
    token of the Workspace bound to it) or, when `token` is None, none."""
    files = {path: f for path, f in plan.files.files.items() if path != AUTH_TOKEN_FILE}
    planned = plan.files.files.get(AUTH_TOKEN_FILE)
    if planned is not None and token is not None:
        files[AUTH_TOKEN_FILE] = dataclasses.replace(planned, content=token.encode())
    return dataclasses.replace(
        plan,
        container=dataclasses.replace(plan.container, name=naming.warm_name(plan.workspace.workspace_id)),
        files=FileTree(plan.files.root, files),
    )
