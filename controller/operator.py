"""kopf wiring: thin and declarative. Everything it calls lives in modules named for what they hold.

Each Workspace gets one reconcile loop (a kopf daemon) that runs when woken: by a change to the
Workspace (an `on.event` handler), by a Docker event about its container, by the resync timer (which
first lists Docker once for everyone), or by its own requeue. One reconcile is in flight per Workspace
and triggers that arrive meanwhile coalesce, as in a controller-runtime work queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
from prometheus_client import start_http_server

from controller import metrics
from controller.api.workspace import GROUP, PLURAL, VERSION
from controller.core import labels
from controller.docker.adapter import DockerAdapter
from controller.docker.errors import DockerError
from controller.docker.events import CONNECTED, RECONNECTED
from controller.events import EventRecorder
from controller.kube.client import KubeClient
from controller.observer import Observer
from controller.reconciler import FLUX_REQUESTED_AT, Reconciler, Result, WorkspaceObject
from controller.settings import ControllerSettings
from controller.sweep import OrphanSweeper
from controller.triggers import Triggers

log = logging.getLogger(__name__)

registry = kopf.OperatorRegistry()
FINALIZER = "molecule.ai/workspace-cleanup"


@dataclass
class Runtime:
    """The controller's long-lived parts, built at startup."""

    settings: ControllerSettings
    docker: DockerAdapter
    kube: KubeClient
    observer: Observer
    reconciler: Reconciler
    sweeper: OrphanSweeper
    triggers: Triggers = field(default_factory=Triggers)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    active: int = 0

    async def reconcile(self, obj: WorkspaceObject, *, fresh: bool) -> Result:
        self.active += 1
        metrics.ACTIVE_WORKERS.labels(metrics.CONTROLLER).set(self.active)
        started = time.perf_counter()
        try:
            result = await self.reconciler.reconcile(obj, fresh=fresh)
        except Exception:
            log.exception("reconcile of %s/%s failed unexpectedly", obj.namespace, obj.name)
            result = Result("error", 30.0)
        finally:
            self.active -= 1
            metrics.ACTIVE_WORKERS.labels(metrics.CONTROLLER).set(self.active)
            metrics.RECONCILE_TIME.labels(metrics.CONTROLLER).observe(time.perf_counter() - started)
        metrics.RECONCILE_TOTAL.labels(metrics.CONTROLLER, result.result).inc()
        if result.result == "error":
            metrics.RECONCILE_ERRORS.labels(metrics.CONTROLLER).inc()
        return result


_runtime: Runtime | None = None


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the controller has not started")
    return _runtime


@kopf.on.login(registry=registry)
def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo | None:
    """In-cluster ServiceAccount first, then KUBECONFIG: no client library needed."""
    return kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(settings=settings)


@kopf.on.startup(registry=registry)
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    global _runtime
    settings.posting.enabled = False  # Events are posted explicitly, not from log lines.
    settings.persistence.finalizer = FINALIZER
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    # Workspaces are the only resource and the namespaces come from the command line: kopf need not
    # scan CRDs or namespaces (which deploy/'s least-privilege RBAC does not allow).
    settings.scanning.disabled = True

    config = ControllerSettings.from_env(os.environ)
    docker = DockerAdapter(timeout=config.docker_timeout_seconds, concurrency=config.docker_concurrency)
    kube = KubeClient.from_environment()
    observer = Observer(docker, config.instance)
    recorder = EventRecorder(kube)
    reconciler = Reconciler(docker=docker, kube=kube, settings=config, observer=observer, events=recorder)
    sweeper = OrphanSweeper(docker=docker, kube=kube, settings=config)
    rt = Runtime(config, docker, kube, observer, reconciler, sweeper)
    _runtime = rt
    metrics.MAX_CONCURRENT.labels(metrics.CONTROLLER).set(config.docker_concurrency)
    rt.tasks = [
        asyncio.create_task(_resync_loop(rt), name="resync"),
        asyncio.create_task(_docker_events_loop(rt), name="docker-events"),
        asyncio.create_task(sweeper.run_forever(), name="orphan-sweep"),
    ]
    log.info(
        "controller instance %r: Docker via %s, resync every %ss, orphan sweep every %ss%s",
        config.instance,
        os.environ.get("DOCKER_HOST", "the default socket"),
        config.resync_seconds,
        config.sweep_interval_seconds,
        " (dry run)" if config.sweep_dry_run else "",
    )


@kopf.on.cleanup(registry=registry)
async def cleanup(**_: Any) -> None:
    global _runtime
    rt = _runtime
    if rt is None:
        return
    for task in rt.tasks:
        task.cancel()
    for task in rt.tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    await rt.docker.close()
    await rt.kube.close()
    _runtime = None


async def _resync_loop(rt: Runtime) -> None:
    """The safety net: one Docker list for everyone, then every loop takes a look."""
    while True:
        try:
            await rt.observer.refresh()
        except DockerError as exc:
            log.warning("resync: listing containers failed: %s", exc)
        except Exception:  # the safety net must never stop
            log.exception("resync: listing containers failed unexpectedly")
        rt.triggers.wake_all()
        await asyncio.sleep(rt.settings.resync_seconds)


async def _docker_events_loop(rt: Runtime) -> None:
    """React to Docker within about a second: a container died, was OOM-killed, removed, unhealthy."""
    owned = labels.owned(rt.settings.instance)
    while True:
        try:
            async for event in rt.docker.events(owned):
                metrics.DOCKER_EVENTS.labels(event.kind).inc()
                if event.kind in (CONNECTED, RECONNECTED):
                    # Events may have been missed while the stream was down: re-observe everything.
                    if event.kind == RECONNECTED:
                        with contextlib.suppress(DockerError):
                            await rt.observer.refresh()
                        rt.triggers.wake_all()
                    continue
                rt.observer.note_event(event)
                uid = event.labels.get(labels.UID_LABEL)
                if uid:
                    rt.triggers.wake(uid, fresh_observation=True)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("following Docker events failed; starting again")
            await asyncio.sleep(1.0)


def needs_attention(body: Mapping[str, Any]) -> bool:
    """Whether a watch event on a Workspace asks for a reconcile (our own status writes do not)."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    if meta.get("deletionTimestamp"):
        return True
    if meta.get("generation") != status.get("observedGeneration"):
        return True
    requested = (meta.get("annotations") or {}).get(FLUX_REQUESTED_AT)
    return bool(requested) and requested != status.get("lastHandledReconcileAt")


@kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
async def on_workspace_event(type: str | None, body: kopf.Body, uid: str, **_: Any) -> None:
    # async: it runs on the event loop, where the triggers live (a sync handler would run in a thread).
    if _runtime is None:
        return
    if type == "DELETED":
        _runtime.reconciler.forget(uid)
    elif needs_attention(body):
        _runtime.triggers.wake(uid)


@kopf.daemon(GROUP, VERSION, PLURAL, registry=registry, cancellation_timeout=10.0)
async def workspace_loop(body: kopf.Body, uid: str, stopped: kopf.DaemonStopped, **_: Any) -> None:
    rt = runtime()
    rt.triggers.register(uid)
    metrics.WORKSPACES.inc()
    try:
        while not stopped:
            obj = WorkspaceObject.from_body(body)
            if obj.deleting:
                return
            result = await rt.reconcile(obj, fresh=rt.triggers.take_fresh_observation(uid))
            if stopped:
                return
            if result.requeue_after == 0:
                continue
            # Woken by a trigger or the resync (which wakes everyone); a requeue sets its own deadline.
            await rt.triggers.wait(uid, result.requeue_after)
    finally:
        rt.triggers.unregister(uid)
        metrics.WORKSPACES.dec()


@kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
async def on_workspace_delete(body: kopf.Body, retry: int, **_: Any) -> None:
    """The finalizer: the container goes, the volumes per deletionPolicy; Docker errors retry."""
    rt = runtime()
    obj = WorkspaceObject.from_body(body)
    try:
        await rt.reconciler.finalize(obj)
    except DockerError as exc:
        delay = min(2.0 ** min(retry, 6), 60.0)
        raise kopf.TemporaryError(
            f"cleaning up Docker objects failed, retrying in {delay:.0f}s: {exc}", delay=delay
        ) from exc
    finally:
        rt.triggers.unregister(obj.uid)


def run(*, namespaces: Collection[str], liveness: str | None, metrics_port: int) -> int:
    if metrics_port:
        start_http_server(metrics_port, addr=os.environ.get("WC_METRICS_ADDR", "127.0.0.1"))
    asyncio.run(
        kopf.operator(
            registry=registry,
            standalone=True,
            clusterwide=not namespaces,
            namespaces=list(namespaces),
            liveness_endpoint=liveness,
        )
    )
    return 0
