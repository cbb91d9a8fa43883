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
import os
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import kopf
from prometheus_client import start_http_server

from controller import docker, metrics
from controller.api.dockerhost import HOST_PLURAL
from controller.api.policy import EFFECTIVE_PLURAL, POLICY_PLURAL
from controller.api.pool import POOL_PLURAL
from controller.api.template import TEMPLATE_PLURAL
from controller.api.workspace import GROUP, PLURAL, VERSION
from controller.core.selectors import selector_matches
from controller.docker import TlsFiles
from controller.kube.client import ApiError, KubeClient
from controller.kube.event_recorder import EventRecorder
from controller.kube.lease import LeaseClient
from controller.kube.referenced_objects import CONFIG_MAPS, SECRETS, ReferencedObjects
from controller.kube.workspace_object import WorkspaceObject
from controller.port.runtime import ContainerRuntime
from controller.reconcile.hosts import Connect, HostConfig, HostRegistry
from controller.reconcile.leadership import LeaderElector
from controller.reconcile.loops import WorkspaceLoops
from controller.reconcile.mirror import WatchMirror
from controller.reconcile.policies import PolicyStore
from controller.reconcile.pools import PoolManager
from controller.reconcile.reconciler import Reconciler, Result
from controller.reconcile.templates import TemplateStore
from controller.reconcile.triggers import Triggers
from controller.settings import ControllerSettings

log = logging.getLogger(__name__)

registry = kopf.OperatorRegistry()
NAMESPACES = "namespaces"


def docker_connector(settings: ControllerSettings) -> Connect:
    """How the controller reaches each DockerHost's daemon: the Docker adapter, with the settings' timeout
    and concurrency."""

    def connect(config: HostConfig, tls: TlsFiles | None) -> ContainerRuntime:
        return docker.connect(
            config.endpoint,
            timeout=settings.docker_timeout_seconds,
            concurrency=settings.docker_concurrency,
            tls=tls,
        )

    return connect


UNSEEN_CLAIMS_AFTER = 60.0
"""Seconds after start-up by which the Workspace watch has listed everything (claims it did not are gone)."""


@dataclass
class Controller:
    """The controller's long-lived parts, built at start-up."""

    settings: ControllerSettings
    hosts: HostRegistry
    kube: KubeClient
    reconciler: Reconciler
    policies: PolicyStore
    triggers: Triggers
    loops: WorkspaceLoops = field(init=False)
    pools: PoolManager = field(init=False)
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
            foreign_status=self.reconciler.status_is_not_ours,
        )
        self.pools = PoolManager(
            hosts=self.hosts, kube=self.kube, settings=self.settings, planner=self.reconciler.slot_template
        )
        self.reconciler.pools = self.pools

    @classmethod
    def build(cls, settings: ControllerSettings) -> Controller:
        kube = KubeClient.from_environment()
        triggers = Triggers()

        hosts = HostRegistry(
            settings=settings, kube=kube, triggers=triggers, connect=docker_connector(settings)
        )
        policies = PolicyStore(
            kube,
            default_image_prefix=settings.registry_prefix,
            wake_all=triggers.wake_all,
            wake_namespace=triggers.wake_namespace,
        )
        reconciler = Reconciler(
            hosts=hosts,
            kube=kube,
            settings=settings,
            events=EventRecorder(kube),
            policies=policies,
            objects=ReferencedObjects(kube, wake=triggers.wake),
            templates=TemplateStore(kube, wake_namespace=triggers.wake_namespace),
        )
        return cls(settings, hosts, kube, reconciler, policies, triggers)

    @classmethod
    async def start(cls, settings: ControllerSettings, namespaces: Collection[str]) -> Controller:
        """Built, with every grant, every host and every placement known before the first Workspace is
        looked at (the watches keep them current after), and its background work running."""
        controller = cls.build(settings)
        await controller.policies.load()
        await controller.hosts.load()
        await controller.seed_placements(namespaces)
        metrics.DOCKER_MAX_CONCURRENT_CALLS.set(settings.docker_concurrency)
        controller.start_background()
        return controller

    def deliver(self, kind: str, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A watch event, to the part that follows that kind of object."""
        if kind == PLURAL:
            # Who holds which workspace ID first: the loop's next pass reads it.
            for uid in self.reconciler.identities.observe(event_type, body):
                self.triggers.wake(uid)
            self.pools.workspace_event(event_type, body)
            self.loops.on_event(event_type, body)
        elif kind == POLICY_PLURAL:
            self.policies.policy_event(event_type, body)
        elif kind == EFFECTIVE_PLURAL:
            self.policies.effective_event(event_type, body)
        elif kind == HOST_PLURAL:
            self.hosts.host_event(event_type, body)
        elif kind == TEMPLATE_PLURAL:
            self.reconciler.templates.template_event(event_type, body)
            self.pools.template_changed()
        elif kind == POOL_PLURAL:
            self.pools.pool_event(event_type, body)
        elif kind == NAMESPACES:
            self.policies.namespace_event(event_type, body)
        elif kind in (SECRETS, CONFIG_MAPS):
            self.reconciler.referenced.watch_event(
                SECRETS if kind == SECRETS else CONFIG_MAPS, event_type, body
            )

    async def seed_placements(self, namespaces: Collection[str]) -> None:
        """Where every Workspace is placed (their statuses say), before any is placed anew."""
        try:
            try:
                bodies = await self.kube.list_workspaces()
            except ApiError as exc:
                if exc.status != HTTPStatus.FORBIDDEN:
                    raise
                bodies = []
                for namespace in namespaces:
                    bodies.extend(await self.kube.list_workspaces(namespace))
        except ApiError as exc:
            log.warning(
                "placements not read at start-up (%s): each Workspace's first pass records its own", exc
            )
            return
        selector = self.settings.workspace_selector
        if selector is not None:
            bodies = [b for b in bodies if selector_matches(selector, _labels(b))]
        self.hosts.scheduler.seed(bodies)
        self.reconciler.identities.seed(bodies)
        for body in bodies:  # which warm slots are bound, before any is handed out
            self.pools.workspace_event(None, body)

    def start_background(self) -> None:
        self.tasks = [
            asyncio.create_task(self.policies.publish_forever(), name="policy-publisher"),
            asyncio.create_task(self._forget_unseen_claims(), name="unseen-claims"),
            asyncio.create_task(self.pools.run_forever(), name="warm-pools"),
        ]

    async def _forget_unseen_claims(self) -> None:
        """Once the watch has had time to list every Workspace, drop the start-up list's claims on
        workspace IDs that it never confirmed (deleted in between), waking whoever they kept waiting."""
        await asyncio.sleep(UNSEEN_CLAIMS_AFTER)
        for uid in self.reconciler.identities.forget_unseen():
            self.triggers.wake(uid)

    async def close(self) -> None:
        await self.loops.close()
        await self.pools.close()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.hosts.close()
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
    # The resources and the namespaces are known: kopf need not scan CRDs or namespaces (which deploy/'s
    # least-privilege RBAC does not allow).
    settings.scanning.disabled = True

    config: ControllerSettings = memo.settings
    if config.leader_elect:
        memo.election = Election.begin(config, memo)
        return
    memo.controller = await Controller.start(config, memo.namespaces)
    _log_started(memo.controller)


@kopf.on.cleanup(registry=registry)
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    election: Election | None = memo.get("election")
    if election is not None:
        election.stopping = True
    controller: Controller | None = memo.get("controller")
    try:
        if controller is not None:
            memo.controller = None
            await controller.close()
    finally:
        if election is not None:
            # The work has stopped: hand the Lease over now rather than make the next leader wait it out.
            await election.elector.release()
            await election.kube.close()


class Election:
    """This replica acts only while it holds the Lease. Standing by, it builds nothing and writes nothing
    but the Lease; its watches fill a mirror, handed to the controller it starts on winning. Losing the
    Lease ends the process at once (its work stops before anyone else's can start; a Docker call in
    flight cannot be cancelled any other way) and Kubernetes starts it again as a standby."""

    def __init__(self, config: ControllerSettings, memo: kopf.Memo) -> None:
        self._config = config
        self._memo = memo
        self.stopping = False
        self.promoting: asyncio.Task[None] | None = None
        self.kube = KubeClient.from_environment()
        self.elector = LeaderElector(
            LeaseClient(self.kube),
            namespace=config.lease_namespace,
            name=config.lease_name,
            identity=config.identity,
            lease_duration=config.lease_duration_seconds,
            renew_deadline=config.renew_deadline_seconds,
            retry_period=config.retry_period_seconds,
            on_started_leading=self._started,
            on_stopped_leading=self._stopped,
        )
        self.task: asyncio.Task[None] | None = None

    @classmethod
    def begin(cls, config: ControllerSettings, memo: kopf.Memo) -> Election:
        memo.mirror = WatchMirror()
        metrics.LEADER.labels(config.lease_name).set(0)
        election = cls(config, memo)
        log.info(
            "controller instance %r: standing by as %s for the Lease %s/%s",
            config.instance,
            config.identity,
            config.lease_namespace,
            config.lease_name,
        )
        election.task = asyncio.create_task(election.elector.run(), name="leader-election")
        return election

    def _started(self) -> None:
        # Not awaited: the elector does not renew while its callback runs, and starting takes a while.
        self.promoting = asyncio.create_task(_promote(self._memo), name="promote")

    def _stopped(self) -> None:
        metrics.LEADER.labels(self._config.lease_name).set(0)
        if self.stopping:
            return
        log.critical(
            "lost the Lease %s/%s: exiting now so that nothing more is done by this replica",
            self._config.lease_namespace,
            self._config.lease_name,
        )
        logging.shutdown()
        os._exit(LOST_LEASE_EXIT)


LOST_LEASE_EXIT = 3
"""The exit status of a replica that lost its Lease (any non-zero status has Kubernetes restart it)."""


async def _promote(memo: kopf.Memo) -> None:
    config: ControllerSettings = memo.settings
    try:
        controller = await Controller.start(config, memo.namespaces)
    except Exception:
        log.critical("the leader could not start the controller; exiting", exc_info=True)
        logging.shutdown()
        os._exit(1)
    election: Election = memo.election
    if election.stopping:
        await controller.close()
        return
    memo.controller = controller
    metrics.LEADER.labels(config.lease_name).set(1)
    mirror: WatchMirror = memo.mirror
    # Synchronously: no watch event can come between two of these, and each was recorded before it
    # was forwarded, so what is handed over is never older than what the controller already had.
    for kind, body in mirror.snapshot():
        controller.deliver(kind, None, body)
    _log_started(controller)


def _log_started(controller: Controller) -> None:
    config = controller.settings
    log.info(
        "controller instance %r: Docker hosts %s, resync every %ss, orphan sweep every %ss%s",
        config.instance,
        ", ".join(h.name for h in controller.hosts.all()) or "none yet",
        config.resync_seconds,
        config.sweep_interval_seconds,
        " (dry run)" if config.sweep_dry_run else "",
    )


def _labels(body: Mapping[str, Any]) -> Mapping[str, str]:
    return (body.get("metadata") or {}).get("labels") or {}


def _deliver(memo: kopf.Memo, kind: str, event_type: str | None, body: Mapping[str, Any]) -> None:
    mirror: WatchMirror | None = memo.get("mirror")
    if mirror is not None:
        mirror.record(kind, event_type, body)
    controller: Controller | None = memo.get("controller")
    if controller is not None:
        controller.deliver(kind, event_type, body)


# The handlers are async: they run on the event loop, where the loops and their triggers live.


@kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
async def on_workspace_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    selector = memo.settings.workspace_selector
    if selector is not None and not selector_matches(selector, _labels(body)):
        # Another shard's (or relabelled away): stop following it; nothing of it is touched.
        type = "DELETED"
    _deliver(memo, PLURAL, type, body)


@kopf.on.event(GROUP, VERSION, POLICY_PLURAL, registry=registry)
async def on_policy_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _deliver(memo, POLICY_PLURAL, type, body)


@kopf.on.event(GROUP, VERSION, EFFECTIVE_PLURAL, registry=registry)
async def on_effective_policy_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _deliver(memo, EFFECTIVE_PLURAL, type, body)


@kopf.on.event(GROUP, VERSION, HOST_PLURAL, registry=registry)
async def on_docker_host_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _deliver(memo, HOST_PLURAL, type, body)


@kopf.on.event(GROUP, VERSION, TEMPLATE_PLURAL, registry=registry)
async def on_template_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _deliver(memo, TEMPLATE_PLURAL, type, body)


@kopf.on.event(GROUP, VERSION, POOL_PLURAL, registry=registry)
async def on_pool_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _deliver(memo, POOL_PLURAL, type, body)


@kopf.on.event("", "v1", SECRETS, registry=registry)
async def on_secret_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    # Not mirrored for a standby: it would hold every Secret; a new leader reads what it needs afresh.
    controller: Controller | None = memo.get("controller")
    if controller is not None:
        controller.deliver(SECRETS, type, body)


@kopf.on.event("", "v1", CONFIG_MAPS, registry=registry)
async def on_config_map_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    controller: Controller | None = memo.get("controller")
    if controller is not None:
        controller.deliver(CONFIG_MAPS, type, body)


@kopf.on.event("", "v1", NAMESPACES, registry=registry)
async def on_namespace_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _deliver(memo, NAMESPACES, type, body)


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
            memo=kopf.Memo(settings=settings, namespaces=tuple(namespaces)),
        )
    )
    return 0
