"""The Docker hosts the controller drives: one connection, one event stream, one batched observation and
one orphan sweep per host, and each DockerHost's status.

Hosts come from DockerHost objects (watched) and, unless `WC_LOCAL_HOST` is empty, one implicit host for
the daemon of `DOCKER_HOST` or the default socket; a DockerHost named like the implicit host replaces
it. A change of endpoint or TLS Secret reconnects; a change of labels, capacity or `unschedulable` only
updates what placement sees. A host removed stops being driven: what runs there is left alone.

Each host is asked `docker info` every few seconds. While it does not answer it is not Ready: nothing
is placed there and its Workspaces say so (Ready=Unknown/HostUnavailable); nothing anywhere is
removed or placed elsewhere because of it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from controller import metrics
from controller.api.dockerhost import TLS_SECRET_KEYS, DockerHostSpec
from controller.api.workspace import Condition
from controller.core.host_status import capacity_of, host_status
from controller.core.placement import Resources
from controller.core.selectors import selector_matches
from controller.docker import TlsFiles
from controller.kube.client import ApiError, KubeApi
from controller.port.errors import ContainerRuntimeError
from controller.port.runtime import ContainerRuntime
from controller.port.values import HostFacts
from controller.reconcile.image_gc import ImageCollector
from controller.reconcile.observer import Observer
from controller.reconcile.orphan_sweeper import OrphanSweeper
from controller.reconcile.recent_pulls import RecentPulls
from controller.reconcile.scheduler import Scheduler
from controller.reconcile.triggers import Triggers
from controller.reconcile.watchers import follow_runtime_events, resync_forever
from controller.settings import ControllerSettings

log = logging.getLogger(__name__)

HEALTH_INTERVAL = 5.0
"""How often each host is asked `docker info` (also how soon a dead or returning host is noticed)."""


@dataclass(frozen=True)
class HostConfig:
    """A host as configured: from a DockerHost object, or the implicit one (`endpoint` None: the
    environment's daemon)."""

    name: str
    endpoint: str | None
    labels: Mapping[str, str] = field(default_factory=dict)
    unschedulable: bool = False
    cpus: float | None = None
    memory_mib: int | None = None
    tls_secret: tuple[str, str] | None = None  # (namespace, name)
    generation: int | None = None
    implicit: bool = False
    conditions: tuple[Condition, ...] = field(default=(), compare=False)
    """The conditions the object's status held when read: a new controller keeps their transition
    times instead of restarting them."""

    @property
    def connection(self) -> tuple[str | None, tuple[str, str] | None]:
        """What a reconnect follows from."""
        return self.endpoint, self.tls_secret

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> HostConfig:
        metadata = body.get("metadata") or {}
        spec = DockerHostSpec.model_validate(body.get("spec") or {})
        tls = spec.tls.secret_ref if spec.tls else None
        return cls(
            name=str(metadata.get("name")),
            endpoint=spec.endpoint,
            labels={str(k): str(v) for k, v in (metadata.get("labels") or {}).items()},
            unschedulable=spec.unschedulable,
            cpus=spec.capacity.cpus if spec.capacity else None,
            memory_mib=spec.capacity.memory_mib if spec.capacity else None,
            tls_secret=(tls.namespace, tls.name) if tls else None,
            generation=metadata.get("generation"),
            conditions=_stored_conditions(body),
        )


def _stored_conditions(body: Mapping[str, Any]) -> tuple[Condition, ...]:
    raw = (body.get("status") or {}).get("conditions") or []
    try:
        return tuple(Condition.model_validate(c) for c in raw if isinstance(c, Mapping))
    except ValidationError:
        return ()  # written by hand or by another version: start afresh


Connect = Callable[[HostConfig, TlsFiles | None], ContainerRuntime]


class Host:
    """One Docker daemon and what the controller keeps for it."""

    def __init__(self, config: HostConfig, runtime: ContainerRuntime, observer: Observer) -> None:
        self.config = config
        self.runtime = runtime
        self.observer = observer
        self.pulls = RecentPulls()
        """Image pulls on this daemon, shared by the Workspaces that need one at about the same time."""
        self.facts: HostFacts | None = None
        self.answered: bool | None = None
        self.asked = asyncio.Event()
        """Set once the daemon was first asked (answering or not)."""
        self.problem = ""
        self.tasks: list[asyncio.Task[None]] = []
        self.conditions: tuple[Condition, ...] = ()
        self.published: dict[str, Any] | None = None
        self.dirty = asyncio.Event()
        self.scratch: tempfile.TemporaryDirectory[str] | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def labels(self) -> Mapping[str, str]:
        return self.config.labels

    @property
    def unschedulable(self) -> bool:
        return self.config.unschedulable

    @property
    def bounded(self) -> bool:
        """The implicit host is not: it takes every Workspace, as the single daemon always did."""
        return not self.config.implicit

    @property
    def ready(self) -> bool:
        return bool(self.answered) and self.capacity() is not None

    def capacity(self) -> Resources | None:
        return capacity_of(self.facts, self.config.cpus, self.config.memory_mib)

    @property
    def runtimes(self) -> frozenset[str] | None:
        """The OCI runtimes the daemon offers; None until it has answered."""
        return frozenset(self.facts.runtimes) if self.facts is not None else None


class HostRegistry:
    def __init__(
        self,
        *,
        settings: ControllerSettings,
        kube: KubeApi,
        triggers: Triggers,
        connect: Connect,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        health_interval: float = HEALTH_INTERVAL,
        background: bool = True,
    ) -> None:
        self._settings = settings
        self._kube = kube
        self._triggers = triggers
        self._connect = connect
        self._clock = clock
        self._health_interval = health_interval
        self._background = background
        self._hosts: dict[str, Host] = {}
        self._objects: dict[str, HostConfig] = {}
        self._changes: asyncio.Lock = asyncio.Lock()
        self._applying: set[asyncio.Task[None]] = set()
        self.scheduler = Scheduler(
            hosts=self.all,
            limits=settings.tier_limits,
            wake=triggers.wake,
            on_change=self._allocation_changed,
        )

    # -- what the reconciler asks ---------------------------------------------------------------------

    def get(self, name: str) -> Host | None:
        return self._hosts.get(name)

    def all(self) -> list[Host]:
        return sorted(self._hosts.values(), key=lambda h: h.name)

    async def asked(self, hosts: list[Host] | None = None) -> None:
        """Return once each host (every one, by default) was asked at least once, so that a pass does not
        take a host that is just being connected for one that does not answer. A daemon that does not
        answer is asked for at most the Docker timeout."""
        waiting = [h.asked.wait() for h in (self.all() if hosts is None else hosts) if not h.asked.is_set()]
        if waiting:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.docker_timeout_seconds + self._health_interval):
                    await asyncio.gather(*waiting)

    # -- configuration --------------------------------------------------------------------------------

    async def load(self) -> None:
        """Every DockerHost, and the implicit host unless one of them replaces it (before any loop runs)."""
        try:
            bodies = await self._kube.list_docker_hosts()
        except ApiError as exc:
            if not (exc.not_found or exc.status == 403):
                raise
            log.warning("DockerHosts cannot be listed (%s): driving the implicit host only", exc.reason)
            bodies = []
        for body in bodies:
            config = self._config(body)
            if config is not None:
                self._objects[config.name] = config
        await self._apply()

    def host_event(self, type_: str | None, body: Mapping[str, Any]) -> asyncio.Task[None]:
        """Follow a watch event of a DockerHost; the change is applied in the task returned."""
        name = str((body.get("metadata") or {}).get("name"))
        if type_ == "DELETED":
            self._objects.pop(name, None)
        else:
            config = self._config(body)
            if config is None:
                self._objects.pop(name, None)
            else:
                self._objects[name] = config
        task = asyncio.get_running_loop().create_task(self._apply(), name=f"hosts-{name}")
        # The loop holds tasks weakly: keep each until it is done.
        self._applying.add(task)
        task.add_done_callback(self._applying.discard)
        return task

    def _config(self, body: Mapping[str, Any]) -> HostConfig | None:
        try:
            config = HostConfig.from_body(body)
        except ValidationError as exc:
            name = (body.get("metadata") or {}).get("name")
            log.warning("DockerHost %s is invalid and not driven: %s", name, exc.errors()[:3])
            return None
        selector = self._settings.host_selector
        if selector is not None and not selector_matches(selector, config.labels):
            log.debug("DockerHost %s is not this shard's (WC_HOST_SELECTOR)", config.name)
            return None
        return config

    def _wanted(self) -> dict[str, HostConfig]:
        wanted = dict(self._objects)
        local = self._settings.local_host
        if local and local not in wanted:
            wanted[local] = HostConfig(name=local, endpoint=self._settings.docker_host, implicit=True)
        return wanted

    async def _apply(self) -> None:
        async with self._changes:
            wanted = self._wanted()
            for name in [n for n in self._hosts if n not in wanted]:
                await self._drop(self._hosts.pop(name))
                log.info("DockerHost %s removed: no longer driven (what runs there is left alone)", name)
            for name, config in wanted.items():
                current = self._hosts.get(name)
                if current is not None and current.config.connection == config.connection:
                    if current.config != config:
                        current.config = config
                        current.dirty.set()
                        self._wake_for_placement(name)
                    continue
                if current is not None:
                    await self._drop(current)
                host = await self._open(config)
                self._hosts[name] = host
                log.info("DockerHost %s: driving %s", name, config.endpoint or "the environment's daemon")
                self._wake_for_placement(name)

    async def _open(self, config: HostConfig) -> Host:
        scratch = None
        tls = None
        if config.tls_secret is not None:
            scratch = tempfile.TemporaryDirectory(prefix="wc-tls-")
            tls = await self._tls_files(config, Path(scratch.name))
        runtime = self._connect(config, tls)
        host = Host(config, runtime, Observer(runtime, self._settings.instance))
        host.conditions = config.conditions
        host.scratch = scratch
        if self._background:
            self._start(host)
        return host

    async def _tls_files(self, config: HostConfig, directory: Path) -> TlsFiles | None:
        assert config.tls_secret is not None
        namespace, name = config.tls_secret
        try:
            secret = await self._kube.get_secret(namespace, name)
        except ApiError as exc:
            log.warning("DockerHost %s: Secret %s/%s cannot be read: %s", config.name, namespace, name, exc)
            return None
        data = (secret or {}).get("data") or {}
        paths = []
        for key in TLS_SECRET_KEYS:
            try:
                content = base64.b64decode(data.get(key) or "", validate=True)
            except (binascii.Error, ValueError):
                content = b""
            if not content:
                log.warning("DockerHost %s: Secret %s/%s has no %s", config.name, namespace, name, key)
                return None
            path = directory / key
            path.write_bytes(content)
            path.chmod(0o600)
            paths.append(str(path))
        return TlsFiles(ca_cert=paths[0], client_cert=paths[1], client_key=paths[2])

    def _start(self, host: Host) -> None:
        name = host.name
        sweeper = OrphanSweeper(runtime=host.runtime, kube=self._kube, settings=self._settings)
        host.tasks = [
            asyncio.create_task(self._watch_health(host), name=f"health-{name}"),
            asyncio.create_task(self._publish_forever(host), name=f"host-status-{name}"),
            asyncio.create_task(
                resync_forever(
                    host.observer,
                    self._triggers,
                    self._settings.resync_seconds,
                    wake=lambda: self.resynced(name),
                ),
                name=f"resync-{name}",
            ),
            asyncio.create_task(
                follow_runtime_events(
                    host.runtime,
                    host.observer,
                    self._triggers,
                    self._settings.instance,
                    wake=lambda: self._wake_host(name),
                ),
                name=f"runtime-events-{name}",
            ),
            asyncio.create_task(sweeper.run_forever(), name=f"orphan-sweep-{name}"),
        ]
        if self._settings.image_gc_after_seconds:
            collector = ImageCollector(
                runtime=host.runtime,
                host=name,
                prefix=self._settings.registry_prefix,
                delay=self._settings.image_gc_after_seconds,
                interval=self._settings.image_gc_interval_seconds,
            )
            host.tasks.append(asyncio.create_task(collector.run_forever(), name=f"image-gc-{name}"))

    async def _drop(self, host: Host) -> None:
        for task in host.tasks:
            task.cancel()
        for task in host.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await host.runtime.close()
        if host.scratch is not None:
            host.scratch.cleanup()
        with contextlib.suppress(KeyError):
            metrics.DOCKER_HOSTS_READY.remove(host.name)
        self._wake_host(host.name)

    async def close(self) -> None:
        async with self._changes:
            for host in list(self._hosts.values()):
                await self._drop(host)
            self._hosts.clear()

    # -- health and status ----------------------------------------------------------------------------

    async def check(self, host: Host) -> bool:
        """Ask the daemon; True when what placement sees of the host changed."""
        before = (host.answered, host.facts)
        try:
            host.facts = await host.runtime.info()
            host.answered, host.problem = True, ""
        except ContainerRuntimeError as exc:
            host.answered, host.problem = False, f"the Docker daemon is not answering: {exc}"
        finally:
            host.asked.set()  # whatever happened: no pass waits on a host that was asked
        changed = (host.answered, host.facts) != before
        metrics.DOCKER_HOSTS_READY.labels(host.name).set(1 if host.ready else 0)
        if changed:
            if host.ready:
                log.info("DockerHost %s is Ready", host.name)
            else:
                log.warning("DockerHost %s is not Ready: %s", host.name, host.problem or "capacity unknown")
            host.dirty.set()
        return changed

    async def _watch_health(self, host: Host) -> None:
        while True:
            try:
                if await self.check(host):
                    self._wake_host(host.name)
                    self._wake_for_placement(host.name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("DockerHost %s: health check failed unexpectedly", host.name)
            await asyncio.sleep(self._health_interval)

    async def _publish_forever(self, host: Host) -> None:
        # Nothing is written before the daemon was asked: a restart does not flap Ready to Unknown.
        await host.asked.wait()
        host.dirty.set()
        while True:
            await host.dirty.wait()
            host.dirty.clear()
            try:
                await self.publish(host)
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                log.warning("DockerHost %s: status not written (%s); retrying", host.name, exc)
                await asyncio.sleep(self._health_interval)
                host.dirty.set()
            except Exception:
                log.exception("DockerHost %s: status not written", host.name)

    async def publish(self, host: Host) -> None:
        """Write the DockerHost's status if it changed (the implicit host has no object to write to)."""
        if host.config.implicit:
            return
        load = self.scheduler.load(host.name)
        status = host_status(
            generation=host.config.generation,
            answered=host.answered,
            problem=host.problem,
            facts=host.facts,
            capacity=host.capacity(),
            allocated=load.resources,
            workspaces=load.workspaces,
            by_tier=load.by_tier,
            previous=host.conditions,
            now=self._clock(),
        )
        body = status.to_dict()
        if body == host.published:
            return
        await self._kube.patch_docker_host_status(host.name, body)
        host.conditions, host.published = status.conditions, body

    # -- wake-ups -------------------------------------------------------------------------------------

    def resynced(self, name: str) -> None:
        """Host `name`'s periodic resync has a new list: its Workspaces take a look, but not a loop backing
        off after a failure (routine), nor a Workspace the list shows as its last pass left it settled
        (a fleet at rest costs the list and nothing per Workspace)."""
        host = self._hosts.get(name)
        self._wake_host(name, routine=True, quiet=host.observer.quiet() if host is not None else set())

    def _wake_host(self, name: str, *, routine: bool = False, quiet: set[str] | None = None) -> None:
        """The Workspaces on host `name` take a look (its list was refreshed, or its state changed), and
        so do those on no host yet (waiting for a Secret, for room, or not looked at yet), but those in
        `quiet`. `routine`: see `Triggers.wake`."""
        if quiet is not None:
            quiet = {self._triggers.resolve(uid) for uid in quiet}  # a bound slot's label: its Workspace
        for uid in self._triggers.registered():
            if self.scheduler.host_of(uid) in (None, name) and (quiet is None or uid not in quiet):
                self._triggers.wake(uid, routine=routine)

    def _wake_for_placement(self, name: str) -> None:
        host = self._hosts.get(name)
        if host is not None and host.ready:
            self.scheduler.wake_waiting()

    def _allocation_changed(self, name: str) -> None:
        host = self._hosts.get(name)
        if host is not None:
            host.dirty.set()
