"""The label-gated orphan sweep: removes this instance's containers (and their Delete-policy volumes)
whose Workspace no longer exists, e.g. after a Workspace was deleted while the controller was down and
its finalizer was removed by hand.

A pass removes nothing when it cannot see the whole picture: the Workspace list must be read completely
and Docker must answer. Containers are listed before Workspaces, so a container created for a new
Workspace is always covered by the Workspace list that follows (and by the creation grace besides).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from controller import metrics
from controller.core import labels
from controller.core.orphans import Candidate, SweepPlan, orphaned_networks, plan_sweep
from controller.core.pools import live_owner_uids
from controller.kube.client import ApiError, KubeApi
from controller.port.errors import ContainerRuntimeError
from controller.port.runtime import ContainerRuntime
from controller.settings import ControllerSettings

log = logging.getLogger(__name__)

FIRST_PASS_DELAY = 5.0


@dataclass(frozen=True)
class SweepReport:
    outcome: str  # completed | dry_run | skipped
    plan: SweepPlan | None = None
    removed_containers: tuple[str, ...] = ()
    removed_volumes: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    why_skipped: str = ""


class OrphanSweeper:
    def __init__(
        self,
        *,
        runtime: ContainerRuntime,
        kube: KubeApi,
        settings: ControllerSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._runtime = runtime
        self._kube = kube
        self._settings = settings
        self._clock = clock
        # Orphans whose container a pass removed (uid -> deletion policy), until their volumes are gone.
        self._removed_policies: dict[str, str] = {}

    async def run_forever(self) -> None:
        await asyncio.sleep(min(FIRST_PASS_DELAY, self._settings.sweep_interval_seconds))
        while True:
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("orphan sweep pass failed")
            await asyncio.sleep(self._settings.sweep_interval_seconds)

    async def sweep_once(self) -> SweepReport:
        owned = labels.owned(self._settings.instance)
        try:
            if not await self._runtime.ping():
                return self._skip("Docker is not answering")
            containers = await self._runtime.list_containers(owned)
            volumes = await self._runtime.list_volumes(owned)
            networks = await self._runtime.list_networks(owned)
        except ContainerRuntimeError as exc:
            return self._skip(f"listing Docker objects failed: {exc}")
        try:
            workspaces = await self._live_workspaces(
                [*(c.labels for c in containers), *(v.labels for v in volumes), *networks.values()]
            )
        except ApiError as exc:
            return self._skip(f"the Workspace list could not be read completely: {exc}")
        live = live_owner_uids(workspaces, [(c.name, c.labels) for c in containers])

        plan = plan_sweep(
            [Candidate(c.name, c.labels, c.created, c.id) for c in containers],
            [Candidate(v.name, v.labels, v.created) for v in volumes],
            instance=self._settings.instance,
            live_uids=live,
            now=self._clock(),
            grace=self._settings.sweep_grace_seconds,
            earlier_policies=self._removed_policies,
        )
        for skip in plan.skipped:
            metrics.SWEEP_SKIPPED.labels(skip.reason).inc()
        metrics.SWEEP_ORPHANS.labels("container").set(len(plan.containers))
        metrics.SWEEP_ORPHANS.labels("volume").set(len(plan.volumes))
        if self._settings.sweep_dry_run:
            metrics.SWEEP_PASSES.labels("dry_run").inc()
            log.info(
                "orphan sweep (dry run): would remove containers %s and volumes %s; skipped %s",
                [c.name for c in plan.containers] or "none",
                [v.name for v in plan.volumes] or "none",
                [f"{s.name} ({s.reason})" for s in plan.skipped] or "none",
            )
            return SweepReport("dry_run", plan)

        removed_containers: list[str] = []
        removed_volumes: list[str] = []
        failed: list[str] = []
        removed_now: set[str] = set()
        # Several removals at once (half the Docker concurrency: reconciles keep slots of their own).
        slots = asyncio.Semaphore(max(1, self._settings.docker_concurrency // 2))

        async def remove(kind: str, name: str, call: Callable[[], Awaitable[None]]) -> bool:
            async with slots:
                try:
                    await call()
                except ContainerRuntimeError as exc:
                    failed.append(name)
                    log.warning("orphan sweep: removing %s %s failed: %s", kind, name, exc)
                    return False
            metrics.SWEEP_REMOVED.labels(kind).inc()
            return True

        async def remove_container(container: Candidate) -> None:
            target = container.id or container.name
            if not await remove("container", container.name, lambda: self._runtime.remove_container(target)):
                return
            removed_containers.append(container.name)
            if container.labels.get(labels.DELETION_POLICY_LABEL) == "Delete":
                # Its volumes go too; remembered so a failed volume removal is retried.
                uid = container.labels.get(labels.UID_LABEL, "")
                self._removed_policies[uid] = "Delete"
                removed_now.add(uid)

        async def remove_volume(volume: Candidate) -> None:
            if await remove("volume", volume.name, lambda: self._runtime.remove_volume(volume.name)):
                removed_volumes.append(volume.name)

        # Containers first: a volume is removed only once no orphan of this pass can still mount it.
        await asyncio.gather(*(remove_container(c) for c in plan.containers))
        await asyncio.gather(*(remove_volume(v) for v in plan.volumes))
        # An isolated agent's internal network, once its Workspace is gone (listed before the Workspaces,
        # like the containers, so one made for a new Workspace is covered). One still in use (a
        # container removal failed) stays for the next pass.
        orphan_networks = orphaned_networks(networks, instance=self._settings.instance, live_uids=live)
        await asyncio.gather(
            *(
                remove("network", n, functools.partial(self._runtime.remove_network, n))
                for n in orphan_networks
            )
        )
        # Forget orphans none of whose volumes is left (or ever will be removed by a sweep). Not in the
        # pass that removed the container, though: a volume made just after this pass listed volumes
        # (the container was listed first) shows up in the next pass only.
        left = {v.labels.get(labels.UID_LABEL) for v in volumes if v.name not in removed_volumes}
        self._removed_policies = {
            u: p for u, p in self._removed_policies.items() if u in left or u in removed_now
        }
        metrics.SWEEP_PASSES.labels("completed").inc()
        if removed_containers or removed_volumes or failed or plan.skipped:
            log.info(
                "orphan sweep: removed containers %s, volumes %s; failed %s; skipped %s",
                removed_containers or "none",
                removed_volumes or "none",
                failed or "none",
                [f"{s.name} ({s.reason})" for s in plan.skipped] or "none",
            )
        return SweepReport(
            "completed", plan, tuple(removed_containers), tuple(removed_volumes), tuple(failed)
        )

    async def _live_workspaces(self, candidates: list[Mapping[str, str]]) -> list[dict[str, Any]]:
        """All Workspaces; under namespaced RBAC (the cluster-wide list is forbidden), those of every
        namespace a candidate's labels name. Any list that fails fails the pass."""
        try:
            return await self._kube.list_workspaces()
        except ApiError as exc:
            if exc.status != HTTPStatus.FORBIDDEN:
                raise
        namespaces = sorted({n for c in candidates if (n := c.get(labels.NAMESPACE_LABEL))})
        workspaces: list[dict[str, Any]] = []
        for namespace in namespaces:
            workspaces.extend(await self._kube.list_workspaces(namespace))
        return workspaces

    def _skip(self, why: str) -> SweepReport:
        metrics.SWEEP_PASSES.labels("skipped").inc()
        log.warning("orphan sweep pass skipped, nothing removed: %s", why)
        return SweepReport("skipped", why_skipped=why)
