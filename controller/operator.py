"""kopf wiring: thin and declarative. Everything it calls lives in modules named for what they hold.

Each Workspace gets one reconcile loop (a kopf daemon) that runs when woken: by a change to the
Workspace (an `on.event` handler), by a container event (`reconcile.watchers`), by the resync timer
(which first lists the runtime once for everyone), or by its own requeue. One reconcile is in flight
per Workspace and triggers that arrive meanwhile coalesce, as in a controller-runtime work queue.

The long-lived parts are built once at start-up and kept in kopf's `memo` (`memo.controller`); every
handler reaches them through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import kopf
from prometheus_client import start_http_server

from controller import docker, metrics
from controller.api.policy import EFFECTIVE_PLURAL, POLICY_PLURAL
from controller.api.workspace import GROUP, PLURAL, VERSION
from controller.core.backoff import backoff
from controller.kube.client import KubeClient
from controller.kube.event_recorder import EventRecorder
from controller.kube.workspace_object import WorkspaceObject, needs_attention
from controller.port.errors import ContainerRuntimeError
from controller.port.runtime import ContainerRuntime
from controller.reconcile.observer import Observer
from controller.reconcile.orphan_sweeper import OrphanSweeper
from controller.reconcile.policies import PolicyStore
from controller.reconcile.reconciler import Reconciler, Result
from controller.reconcile.triggers import Triggers
from controller.reconcile.watchers import follow_runtime_events, resync_forever
from controller.settings import ControllerSettings

log = logging.getLogger(__name__)

registry = kopf.OperatorRegistry()
FINALIZER = "molecule.ai/workspace-cleanup"


@dataclass
class Controller:
    """The controller's long-lived parts, built at start-up."""

    settings: ControllerSettings
    runtime: ContainerRuntime
    kube: KubeClient
    observer: Observer
    reconciler: Reconciler
    sweeper: OrphanSweeper
    policies: PolicyStore
    triggers: Triggers
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    active: int = 0

    @classmethod
    def build(cls, settings: ControllerSettings) -> Controller:
        runtime = docker.connect(
            timeout=settings.docker_timeout_seconds, concurrency=settings.docker_concurrency
        )
        kube = KubeClient.from_environment()
        observer = Observer(runtime, settings.instance)
        triggers = Triggers()
        policies = PolicyStore(
            kube, default_image_prefix=settings.registry_prefix, wake_all=triggers.wake_all
        )
        reconciler = Reconciler(
            runtime=runtime,
            kube=kube,
            settings=settings,
            observer=observer,
            events=EventRecorder(kube),
            policies=policies,
        )
        sweeper = OrphanSweeper(runtime=runtime, kube=kube, settings=settings)
        return cls(settings, runtime, kube, observer, reconciler, sweeper, policies, triggers)

    def start_background(self) -> None:
        self.tasks = [
            asyncio.create_task(
                resync_forever(self.observer, self.triggers, self.settings.resync_seconds), name="resync"
            ),
            asyncio.create_task(
                follow_runtime_events(self.runtime, self.observer, self.triggers, self.settings.instance),
                name="runtime-events",
            ),
            asyncio.create_task(self.sweeper.run_forever(), name="orphan-sweep"),
            asyncio.create_task(self.policies.publish_forever(), name="policy-publisher"),
        ]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.runtime.close()
        await self.kube.close()

    async def reconcile(self, obj: WorkspaceObject, *, fresh: bool) -> Result:
        """One reconcile, counted and timed as controller-runtime counts them."""
        self.active += 1
        metrics.ACTIVE_WORKERS.labels(metrics.CONTROLLER).set(self.active)
        started = time.perf_counter()
        try:
            result = await self.reconciler.reconcile(obj, fresh=fresh)
        except Exception:
            log.exception("reconcile of %s failed unexpectedly", obj.ref)
            result = Result("error", 30.0)
        finally:
            self.active -= 1
            metrics.ACTIVE_WORKERS.labels(metrics.CONTROLLER).set(self.active)
            metrics.RECONCILE_TIME.labels(metrics.CONTROLLER).observe(time.perf_counter() - started)
        metrics.RECONCILE_TOTAL.labels(metrics.CONTROLLER, result.result).inc()
        if result.result == "error":
            metrics.RECONCILE_ERRORS.labels(metrics.CONTROLLER).inc()
        return result


@kopf.on.login(registry=registry)
def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo | None:
    """In-cluster ServiceAccount first, then KUBECONFIG: no client library needed."""
    return kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(settings=settings)


@kopf.on.startup(registry=registry)
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.enabled = False  # Events are posted explicitly, not from log lines.
    settings.persistence.finalizer = FINALIZER
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    # Workspaces are the only resource and the namespaces come from the command line: kopf need not
    # scan CRDs or namespaces (which deploy/'s least-privilege RBAC does not allow).
    settings.scanning.disabled = True

    config: ControllerSettings = memo.settings
    controller = Controller.build(config)
    # Every grant is known before the first Workspace is looked at; the watches below keep it current.
    await controller.policies.load()
    memo.controller = controller
    metrics.DOCKER_MAX_CONCURRENT_CALLS.set(config.docker_concurrency)
    controller.start_background()
    log.info(
        "controller instance %r: Docker via %s, resync every %ss, orphan sweep every %ss%s",
        config.instance,
        config.docker_host or "the default socket",
        config.resync_seconds,
        config.sweep_interval_seconds,
        " (dry run)" if config.sweep_dry_run else "",
    )


@kopf.on.cleanup(registry=registry)
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    controller: Controller | None = memo.get("controller")
    if controller is not None:
        await controller.close()


@kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
async def on_workspace_event(type: str | None, body: kopf.Body, uid: str, memo: kopf.Memo, **_: Any) -> None:
    # async: it runs on the event loop, where the triggers live (a sync handler would run in a thread).
    controller: Controller = memo.controller
    if type == "DELETED":
        controller.reconciler.forget(uid)
    elif needs_attention(body):
        controller.triggers.wake(uid)


@kopf.on.event(GROUP, VERSION, POLICY_PLURAL, registry=registry)
async def on_policy_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.policies.policy_event(type, body)


@kopf.on.event(GROUP, VERSION, EFFECTIVE_PLURAL, registry=registry)
async def on_effective_policy_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.policies.effective_event(type, body)


@kopf.on.event("", "v1", "namespaces", registry=registry)
async def on_namespace_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.policies.namespace_event(type, body)


@kopf.daemon(GROUP, VERSION, PLURAL, registry=registry, cancellation_timeout=10.0)
async def workspace_loop(
    body: kopf.Body, uid: str, stopped: kopf.DaemonStopped, memo: kopf.Memo, **_: Any
) -> None:
    controller: Controller = memo.controller
    triggers = controller.triggers
    triggers.register(uid)
    metrics.WORKSPACES.inc()
    try:
        while not stopped:
            obj = WorkspaceObject.from_body(body)
            if obj.deleting:
                return
            result = await controller.reconcile(obj, fresh=triggers.take_fresh_observation(uid))
            if stopped:
                return
            if result.requeue_after == 0:
                continue
            # Woken by a trigger or the resync (which wakes everyone); a requeue sets its own deadline.
            await triggers.wait(uid, result.requeue_after)
    finally:
        triggers.unregister(uid)
        metrics.WORKSPACES.dec()


@kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
async def on_workspace_delete(body: kopf.Body, retry: int, memo: kopf.Memo, **_: Any) -> None:
    """The finalizer: the container goes, the volumes per deletionPolicy; runtime errors retry."""
    controller: Controller = memo.controller
    obj = WorkspaceObject.from_body(body)
    try:
        await controller.reconciler.finalize(obj)
    except ContainerRuntimeError as exc:
        delay = backoff(retry)
        raise kopf.TemporaryError(
            f"cleaning up Docker objects failed, retrying in {delay:.0f}s: {exc}", delay=delay
        ) from exc
    finally:
        controller.triggers.unregister(obj.ref.uid)


def run(settings: ControllerSettings, *, namespaces: Collection[str]) -> int:
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_addr)
    asyncio.run(
        kopf.operator(
            registry=registry,
            standalone=True,
            clusterwide=not namespaces,
            namespaces=list(namespaces),
            liveness_endpoint=settings.liveness or None,
            memo=kopf.Memo(settings=settings),
        )
    )
    return 0
