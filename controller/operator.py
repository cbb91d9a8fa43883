"""kopf wiring: thin and declarative. Everything it calls lives in modules named for what they hold.

kopf watches; the controller does the rest. Each Workspace gets one loop of the controller's own
(`reconcile.loops`), fed by the Workspace watch (an `on.event` handler) and woken by a container event
(`reconcile.watchers`), the resync timer (which first lists the runtime once for everyone), or its own
requeue. The loop owns the Workspace's finalizer: kopf keeps no state on the object (no annotations,
no finalizer of its own), so a Workspace of any size the schema allows is handled, and one being deleted
when the controller starts is finished like any other.

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
from controller.kube.client import KubeClient
from controller.kube.event_recorder import EventRecorder
from controller.kube.workspace_object import WorkspaceObject
from controller.port.runtime import ContainerRuntime
from controller.reconcile.loops import WorkspaceLoops
from controller.reconcile.observer import Observer
from controller.reconcile.orphan_sweeper import OrphanSweeper
from controller.reconcile.policies import PolicyStore
from controller.reconcile.reconciler import Reconciler, Result
from controller.reconcile.triggers import Triggers
from controller.reconcile.watchers import follow_runtime_events, resync_forever
from controller.settings import ControllerSettings

log = logging.getLogger(__name__)

registry = kopf.OperatorRegistry()


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
    loops: WorkspaceLoops = field(init=False)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    active: int = 0

    def __post_init__(self) -> None:
        self.loops = WorkspaceLoops(
            kube=self.kube,
            triggers=self.triggers,
            reconcile=self.reconcile,
            finalize=self.reconciler.finalize,
            forget=self.reconciler.forget,
            on_count=metrics.WORKSPACES.set,
        )

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
        await self.loops.close()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.runtime.close()
        await self.kube.close()

    async def reconcile(self, obj: WorkspaceObject, fresh: bool) -> Result:
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
async def on_workspace_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    # async: it runs on the event loop, where the loops and their triggers live.
    memo.controller.loops.on_event(type, body)


@kopf.on.event(GROUP, VERSION, POLICY_PLURAL, registry=registry)
async def on_policy_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.policies.policy_event(type, body)


@kopf.on.event(GROUP, VERSION, EFFECTIVE_PLURAL, registry=registry)
async def on_effective_policy_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.policies.effective_event(type, body)


@kopf.on.event("", "v1", "namespaces", registry=registry)
async def on_namespace_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.policies.namespace_event(type, body)


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
