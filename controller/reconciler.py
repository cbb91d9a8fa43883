"""The reconcile: read one Workspace and what Docker has, converge, report.

Level-based and idempotent, whatever woke it (create, update, a controller restart, a resync, a Docker
event). It is written once here; everything specific to Docker is behind `DockerAdapter`, everything
specific to Kubernetes behind `KubeClient`, and every decision that can be pure lives in
`controller.core`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from pydantic import ValidationError

from controller import metrics
from controller.api.workspace import ContainerStatus, SessionStatus, WorkspaceSpec, WorkspaceStatus
from controller.core import labels, naming
from controller.core.conditions import (
    Cause,
    ConditionType,
    Reason,
    ReconcileOutcome,
    compute_conditions,
    compute_phase,
    find_condition,
    format_time,
    status_changed,
)
from controller.core.crashloop import RestartHistory, crash_loop_message, is_crash_looping
from controller.core.images import (
    image_never_pulled_message,
    image_not_found_message,
    pull_failure_tolerated,
    registry_host,
    should_pull,
)
from controller.core.plan import (
    ContainerPlan,
    PlanError,
    needs_session_reset,
    plan_workspace,
    to_docker_create_kwargs,
)
from controller.docker.adapter import DockerAdapter
from controller.docker.errors import (
    Conflict,
    DockerError,
    DockerUnavailable,
    ImageNotFound,
    RegistryAuthFailed,
    RegistryUnavailable,
)
from controller.docker.image_refs import split_reference
from controller.docker.observed import ObservedContainer
from controller.events import EventRecorder
from controller.inputs import InputResolver, WorkspaceIdentity
from controller.kube.client import ApiError, KubeClient
from controller.observer import Observer
from controller.settings import ControllerSettings

log = logging.getLogger(__name__)

CONFIGS_PATH = "/configs"
FLUX_REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
# While a container is being created or starts, look again soon even if no Docker event arrives.
PROGRESS_REQUEUE = 2.0
ADOPT_REQUEUE = 1.0
MAX_BACKOFF = 60.0
REJECTED_RETRY = 300.0
STOP_GRACE = 10.0
ACTIVE_STATES = ("running", "restarting", "paused")


@dataclass(frozen=True)
class WorkspaceObject:
    """The parts of a Workspace object a reconcile reads."""

    uid: str
    namespace: str
    name: str
    generation: int
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    annotations: Mapping[str, str]
    deleting: bool = False

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> WorkspaceObject:
        meta = body.get("metadata") or {}
        return cls(
            uid=str(meta.get("uid", "")),
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            generation=int(meta.get("generation") or 0),
            spec=dict(body.get("spec") or {}),
            status=dict(body.get("status") or {}),
            annotations=dict(meta.get("annotations") or {}),
            deleting=bool(meta.get("deletionTimestamp")),
        )

    @property
    def identity(self) -> WorkspaceIdentity:
        return WorkspaceIdentity(self.uid, self.namespace, self.name)


@dataclass(frozen=True)
class Result:
    """What the loop does next: `requeue_after` seconds (None: wait for a trigger or the resync)."""

    result: str  # success | error | requeue_after (controller-runtime's metric values)
    requeue_after: float | None = None


class _Stall(Exception):
    """A terminal problem: report Stalled and wait for the spec or a dependency to change."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.cause = Cause(reason, message)


@dataclass
class _Pass:
    """What one pass learns, filled in as it goes."""

    plan: ContainerPlan | None = None
    container: ObservedContainer | None = None
    progressing: Cause | None = None
    error: Cause | None = None
    stalled: Cause | None = None
    token_secret: str | None = None
    session_handled: str | None = None
    image_digest: str | None = None
    requeue_after: float | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)


@dataclass
class _Memory:
    """Per-Workspace state kept between passes (lost on restart: everything here can be re-learned)."""

    failures: int = 0
    restarts: RestartHistory = field(default_factory=RestartHistory)
    digests: dict[str, str] = field(default_factory=dict)  # "<image id> <ref>" -> repo@digest
    # The status this controller last reported. The Workspace a pass reads can predate it (the watch
    # event of our own status write may not have arrived yet); transitions are judged against this.
    reported: WorkspaceStatus | None = None
    # A configuration the daemon refused to create: (config hash, retry after (monotonic), why).
    rejected: tuple[str, float, Cause] | None = None
    name_conflict: bool = False
    session_reset_handled: str | None = None


class Reconciler:
    def __init__(
        self,
        *,
        docker: DockerAdapter,
        kube: KubeClient,
        settings: ControllerSettings,
        observer: Observer,
        events: EventRecorder,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._docker = docker
        self._kube = kube
        self._settings = settings
        self._observer = observer
        self._inputs = InputResolver(kube)
        self._events = events
        self._clock = clock
        self._memory: dict[str, _Memory] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._finalized: set[str] = set()

    def forget(self, uid: str) -> None:
        """Drop what is remembered of a Workspace that is gone."""
        self._memory.pop(uid, None)
        self._observer.forget(naming.container_name(uid))
        lock = self._locks.get(uid)
        if lock is not None and not lock.locked():
            del self._locks[uid]

    # -- the reconcile ---------------------------------------------------------------------------------

    async def reconcile(self, obj: WorkspaceObject, *, fresh: bool = False) -> Result:
        # One pass at a time per Workspace, and none after its finalizer ran: a deletion never races a
        # pass that is still creating the container.
        async with self._lock(obj.uid):
            if obj.uid in self._finalized:
                return Result("success")
            return await self._reconcile(obj, fresh=fresh)

    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    async def _reconcile(self, obj: WorkspaceObject, *, fresh: bool) -> Result:
        memory = self._memory.setdefault(obj.uid, _Memory())
        work = _Pass()
        spec: WorkspaceSpec | None = None
        try:
            spec = WorkspaceSpec.model_validate(obj.spec)
            await self._converge(obj, spec, work, memory, fresh=fresh)
        except ValidationError as exc:
            work.stalled = Cause(Reason.INVALID_SPEC, _validation_message(exc))
        except _Stall as stall:
            work.stalled = stall.cause
        except DockerUnavailable as exc:
            work.error = Cause(Reason.DOCKER_UNAVAILABLE, f"the Docker daemon is not answering: {exc}")
        except DockerError as exc:
            work.error = Cause(Reason.RECONCILE_ERROR, str(exc))
        except ApiError as exc:
            work.error = Cause(Reason.RECONCILE_ERROR, f"Kubernetes API: {exc}")

        if work.error is not None:
            memory.failures += 1
            work.requeue_after = min(2.0 ** min(memory.failures, 6), MAX_BACKOFF)
        else:
            memory.failures = 0
        await self._report(obj, spec, work, memory)
        if work.error is not None:
            return Result("error", work.requeue_after)
        if work.requeue_after is not None:
            return Result("requeue_after", work.requeue_after)
        return Result("success")

    async def _converge(
        self, obj: WorkspaceObject, spec: WorkspaceSpec, work: _Pass, memory: _Memory, *, fresh: bool
    ) -> None:
        name = naming.container_name(obj.uid)
        if spec.suspend:
            existing = await self._observer.observe(name, fresh=fresh)
            if existing is not None and self._owned(existing, obj) and existing.state in ACTIVE_STATES:
                # Stopped, not removed: `unless-stopped` keeps it down across daemon restarts, and resuming
                # starts the same container on the same volumes.
                await self._docker.stop_container(existing.id, STOP_GRACE)
                self._observer.touched(name)
                work.events.append(
                    ("Normal", "Suspended", f"stopped container {name}; it and its volumes are kept")
                )
            return

        resolved = await self._inputs.resolve(obj.identity, spec)
        if isinstance(resolved, Cause):
            raise _Stall(resolved.reason, resolved.message)
        inputs, work.token_secret = resolved

        plan = plan_workspace(obj.uid, obj.namespace, obj.name, spec, inputs, self._settings)
        if isinstance(plan, PlanError):
            raise _Stall(plan.reason, plan.message)
        work.plan = plan

        # A foreign container holding our name is invisible to the labeled list: look at it directly.
        container = await self._observer.observe(name, fresh=fresh or memory.name_conflict)
        memory.name_conflict = container is not None and not self._owned(container, obj)
        if memory.name_conflict:
            raise _Stall(Reason.NAME_CONFLICT, _name_conflict_message(name))

        # The last reset this controller performed wins over a status that may not show it yet.
        previous_reset = memory.session_reset_handled or (obj.status.get("session") or {}).get(
            "lastResetHandled"
        )
        reset = needs_session_reset(plan, previous_reset)
        image_ready = False
        if container is not None and (
            reset
            or container.state == "dead"
            or labels.read_config_hash(container.labels) != plan.config_hash
            or container.image != plan.image  # swapped by hand: the hash label alone could be copied
        ):
            # The new image first: a slow or failing pull must not leave the workspace without a container.
            await self._ensure_image(plan, work)
            image_ready = True
            await self._docker.remove_container(container.id)
            self._observer.touched(name)
            why = "a session reset" if reset else "a changed configuration"
            work.events.append(("Normal", "Recreating", f"removed container {name} for {why}"))
            container = None
        if reset and plan.session_volume:
            await self._docker.remove_volume(plan.session_volume)
            memory.session_reset_handled = plan.session_reset_token
            work.events.append(("Normal", "SessionReset", f"emptied session volume {plan.session_volume}"))
        work.session_handled = plan.session_reset_token if plan.session_volume else previous_reset

        if container is None:
            rejected = memory.rejected
            if rejected is not None and rejected[0] == plan.config_hash and time.monotonic() < rejected[1]:
                # The daemon refused exactly this configuration: retried now and then, not every resync.
                raise _Stall(rejected[2].reason, rejected[2].message)
            await self._remove_strays(obj, name)
            try:
                container = await self._create(plan, work, obj, image_ready=image_ready)
            except _Stall as stall:
                if stall.cause.reason == Reason.CONTAINER_REJECTED:
                    memory.rejected = (plan.config_hash, time.monotonic() + REJECTED_RETRY, stall.cause)
                if stall.cause.reason == Reason.NAME_CONFLICT:
                    memory.name_conflict = True
                raise
        elif container.state == "paused":
            await self._docker.unpause_container(container.id)
            self._observer.touched(name)
            work.events.append(("Normal", "Unpaused", f"unpaused container {name}"))
            container = await self._observer.observe(name)
        elif container.state == "created":
            # Created by an earlier pass that did not get to start it (e.g. the controller was stopped).
            await self._docker.put_files(container.id, CONFIGS_PATH, plan.config_tar())
            await self._start(plan, container.id, work)
            container = await self._observer.observe(name)
        elif container.state == "exited" and not self._crash_looping(container, memory):
            # With restart policy unless-stopped an exited container was stopped on purpose (by hand):
            # the spec says it runs.
            await self._start(plan, container.id, work, reason="Restarted")
            container = await self._observer.observe(name)

        work.container = container
        if container is None:
            return
        if container.detail and container.restart_count is not None:
            restarts = memory.restarts.observe(
                container.id,
                container.restart_count,
                time.monotonic(),
                self._settings.crashloop_window_seconds,
            )
            if is_crash_looping(restarts, self._settings.crashloop_restarts):
                raise _Stall(
                    Reason.CRASH_LOOP,
                    crash_loop_message(
                        restarts,
                        self._settings.crashloop_window_seconds,
                        container.exit_code,
                        container.oom_killed,
                    ),
                )
        if container.state == "created" or (container.state == "running" and container.health == "starting"):
            work.requeue_after = PROGRESS_REQUEUE
        work.image_digest = await self._digest(container, plan, memory)

    def _crash_looping(self, container: ObservedContainer, memory: _Memory) -> bool:
        return memory.restarts.container_id == container.id and is_crash_looping(
            len(memory.restarts.restarts), self._settings.crashloop_restarts
        )

    def _owned(self, container: ObservedContainer, obj: WorkspaceObject) -> bool:
        owner = labels.read_owner(container.labels, self._settings.instance)
        return owner is not None and owner.uid == obj.uid

    async def _remove_strays(self, obj: WorkspaceObject, name: str) -> None:
        """Remove this Workspace's containers under another name (renamed by hand): never two agents."""
        for stray in await self._docker.list_containers(self._owned_labels(obj.uid)):
            if stray.name != name:
                await self._docker.remove_container(stray.id)
                self._events.post_soon(obj, "Normal", "RemovedStray", f"removed container {stray.name}")

    def _owned_labels(self, uid: str) -> dict[str, str]:
        return {**labels.owned(self._settings.instance), labels.UID_LABEL: uid}

    async def _create(
        self, plan: ContainerPlan, work: _Pass, obj: WorkspaceObject, *, image_ready: bool = False
    ) -> ObservedContainer | None:
        work.progressing = Cause(Reason.CREATING, f"creating container {plan.name}")
        network_id = await self._docker.ensure_network(plan.network) if plan.network else None
        for volume in plan.volumes:
            await self._docker.ensure_volume(volume.name, volume.labels)
        if not image_ready:
            await self._ensure_image(plan, work)

        kwargs = to_docker_create_kwargs(plan)
        container_kwargs = {k: v for k, v in kwargs["container"].items() if k not in ("name", "platform")}
        host_config = dict(kwargs["host_config"])
        networking = None
        if plan.network and network_id:
            # Attach by ID: a name two networks share would be ambiguous at start.
            host_config["network_mode"] = network_id
            networking = {network_id: kwargs["endpoints_config"][plan.network]}
        try:
            container_id = await self._docker.create_container(
                plan.name, container_kwargs, host_config, networking, plan.platform or ""
            )
        except Conflict:
            # The name is taken: ours (an earlier pass the list did not show yet) is adopted on the next
            # pass rather than duplicated; anyone else's is a conflict the user must resolve.
            self._observer.touched(plan.name)
            existing = await self._observer.observe(plan.name)
            if existing is not None and not self._owned(existing, obj):
                raise _Stall(Reason.NAME_CONFLICT, _name_conflict_message(plan.name)) from None
            work.requeue_after = ADOPT_REQUEUE
            return existing
        except DockerError as exc:
            if exc.status_code != HTTPStatus.BAD_REQUEST:
                raise
            # The daemon refuses this configuration (e.g. more CPUs than the host has for the tier):
            # retrying the same spec cannot help.
            raise _Stall(
                Reason.CONTAINER_REJECTED, f"the Docker daemon refused to create {plan.name}: {exc}"
            ) from exc
        self._observer.touched(plan.name)
        work.events.append(("Normal", "Created", f"created container {plan.name} from {plan.image}"))
        # Config files and the token are in /configs before the agent's first instruction runs.
        await self._docker.put_files(container_id, CONFIGS_PATH, plan.config_tar())
        await self._start(plan, container_id, work)
        return await self._observer.observe(plan.name)

    async def _start(
        self, plan: ContainerPlan, container_id: str, work: _Pass, reason: str = "Started"
    ) -> None:
        try:
            await self._docker.start_container(container_id)
        except DockerUnavailable:
            raise
        except DockerError as exc:
            # Reported as Synced=False (one Warning when it starts failing, not one per retry).
            raise DockerError(f"failed to start container {plan.name}: {exc}") from exc
        finally:
            self._observer.touched(plan.name)
        work.events.append(("Normal", reason, f"started container {plan.name}"))

    async def _ensure_image(self, plan: ContainerPlan, work: _Pass) -> None:
        local_id = await self._docker.image_present(plan.image)
        present = local_id is not None
        if not should_pull(plan.image_pull_policy, plan.image, present):
            if not present:
                raise _Stall(Reason.IMAGE_NOT_FOUND, image_never_pulled_message(plan.image))
            return
        auth = plan.pull_auth.as_auth_config() if plan.pull_auth else None
        try:
            pulled_id = await self._docker.pull_image(plan.image, plan.platform or "", auth)
        except ImageNotFound as exc:
            if present and pull_failure_tolerated(plan.image_pull_policy, present):
                log.warning("re-pull of %s failed (%s); using the local copy", plan.image, exc)
                return
            # No event here: becoming Stalled posts one Warning (ImageNotFound) with this message, once,
            # rather than one per resync while the image stays missing.
            raise _Stall(
                Reason.IMAGE_NOT_FOUND,
                image_not_found_message(plan.image, registry_host(plan.image), str(exc)),
            ) from exc
        except RegistryAuthFailed as exc:
            if present and pull_failure_tolerated(plan.image_pull_policy, present):
                log.warning("re-pull of %s refused (%s); using the local copy", plan.image, exc)
                return
            registry = registry_host(plan.image)
            hint = (
                "check the credentials in spec.imagePullSecrets"
                if plan.pull_auth
                else "add a kubernetes.io/dockerconfigjson Secret for it to spec.imagePullSecrets"
            )
            raise _Stall(
                Reason.REGISTRY_AUTH_FAILED,
                f"registry {registry} refused to serve {plan.image}: {exc}; {hint}",
            ) from exc
        except RegistryUnavailable:
            if present and pull_failure_tolerated(plan.image_pull_policy, present):
                log.warning("registry unavailable for %s; using the local copy", plan.image)
                return
            raise
        detail = "a new image" if pulled_id != local_id else "already up to date"
        work.events.append(("Normal", "Pulled", f"pulled image {plan.image} ({detail})"))

    async def _digest(self, container: ObservedContainer, plan: ContainerPlan, memory: _Memory) -> str | None:
        """status.container.imageDigest: ``<repository>@sha256:...``, the digest the image resolved to."""
        if not container.image_id:
            return None
        ref = container.image or plan.image
        key = f"{container.image_id} {ref}"
        known = memory.digests.get(key)
        if known is None:
            digest = await self._docker.image_digest(ref)
            if digest is None:
                return None
            known = f"{split_reference(ref)[0]}@{digest}"
            memory.digests = {key: known}
        return known

    # -- deletion -------------------------------------------------------------------------------------

    async def finalize(self, obj: WorkspaceObject) -> None:
        """Remove the container (force), then the volumes if the policy says Delete.

        Raises DockerError on failure: the finalizer stays and the deletion is retried.
        """
        async with self._lock(obj.uid):
            await self._finalize(obj)

    async def _finalize(self, obj: WorkspaceObject) -> None:
        name = naming.container_name(obj.uid)
        policy = (obj.spec or {}).get("deletionPolicy", "Delete")
        owned = self._owned_labels(obj.uid)
        # Every container labeled for this Workspace, whatever its name (a rename by hand included).
        for container in await self._docker.list_containers(owned):
            await self._docker.remove_container(container.id)
        self._observer.touched(name)
        if policy == "Delete":
            for volume in await self._docker.list_volumes(owned):
                await self._docker.remove_volume(volume.name)
        self._finalized.add(obj.uid)
        kept = "volumes removed" if policy == "Delete" else "volumes retained (deletionPolicy Retain)"
        log.info("workspace %s/%s deleted: container %s removed, %s", obj.namespace, obj.name, name, kept)
        await self._events.post(obj, "Normal", "Deleted", f"removed container {name}; {kept}")
        self.forget(obj.uid)
        for gauge in (metrics.WORKSPACE_READY, metrics.WORKSPACE_STALLED):
            with contextlib.suppress(KeyError):
                gauge.remove(obj.namespace, obj.name)

    # -- status ---------------------------------------------------------------------------------------

    async def _report(
        self, obj: WorkspaceObject, spec: WorkspaceSpec | None, work: _Pass, memory: _Memory
    ) -> None:
        now = self._clock()
        try:
            previous = WorkspaceStatus.model_validate(obj.status)
        except ValidationError:
            previous = WorkspaceStatus()
        container = _container_status(work.container, work.image_digest)
        if work.error is not None and work.container is None and previous.container is not None:
            # Docker did not answer: keep the last thing it told us rather than report it gone.
            container = previous.container
        plan = work.plan
        outcome = ReconcileOutcome(
            container=container,
            desired_config_hash=plan.config_hash if plan else None,
            suspended=bool(spec and spec.suspend),
            progressing=work.progressing if container is None or container.state != "running" else None,
            error=work.error,
            stalled=work.stalled,
        )
        conditions = compute_conditions(obj.generation, outcome, previous.conditions, now)
        endpoint = None
        if plan is not None and work.container is not None:
            endpoint = plan.fixed_endpoint or (
                naming.endpoint_url(naming.LOOPBACK, work.container.host_port)
                if work.container.host_port
                else None
            )
        elif work.error is not None:
            endpoint = previous.endpoint
        running_current = (
            plan is not None and container is not None and container.config_hash == plan.config_hash
        )
        status = WorkspaceStatus(
            observed_generation=obj.generation,
            conditions=tuple(conditions),
            phase=compute_phase(outcome),
            container=container if not (spec and spec.suspend) else None,
            endpoint=endpoint if not (spec and spec.suspend) else None,
            internal_url=plan.internal_url if plan else previous.internal_url,
            auth_token_secret_name=work.token_secret or previous.auth_token_secret_name,
            session=SessionStatus(last_reset_handled=work.session_handled)
            if work.session_handled
            else previous.session,
            last_handled_restart_at=spec.restart_requested_at
            if spec and running_current
            else previous.last_handled_restart_at,
            last_handled_reconcile_at=obj.annotations.get(FLUX_REQUESTED_AT)
            or previous.last_handled_reconcile_at,
        )
        new = status.to_dict()
        if status_changed(obj.status, new):
            await self._kube.patch_workspace_status(obj.namespace, obj.name, _with_nulls(obj.status, new))
        for type_, reason, message in work.events:
            await self._events.post(obj, type_, reason, message)
        self._post_transitions(obj, memory.reported or previous, status)
        memory.reported = status
        ready = find_condition(status.conditions, ConditionType.READY)
        metrics.WORKSPACE_READY.labels(obj.namespace, obj.name).set(
            ready is not None and ready.status == "True"
        )
        metrics.WORKSPACE_STALLED.labels(obj.namespace, obj.name).set(work.stalled is not None)

    def _post_transitions(
        self, obj: WorkspaceObject, previous: WorkspaceStatus, status: WorkspaceStatus
    ) -> None:
        """Warn once when a Workspace becomes Stalled or its reconcile starts failing (not every pass).

        A stalled Workspace is also Synced=False with the same message: one Warning says it.
        """
        stalled = find_condition(status.conditions, ConditionType.STALLED)
        kinds = (
            (ConditionType.STALLED,) if stalled is not None else (ConditionType.STALLED, ConditionType.SYNCED)
        )
        for kind in kinds:
            before = find_condition(previous.conditions, kind)
            after = find_condition(status.conditions, kind)
            if after is None:
                continue
            failing = (kind == ConditionType.STALLED and after.status == "True") or (
                kind == ConditionType.SYNCED and after.status == "False"
            )
            if failing and (before is None or (before.status, before.reason) != (after.status, after.reason)):
                self._events.post_soon(obj, "Warning", after.reason, after.message)


def _name_conflict_message(name: str) -> str:
    return (
        f"a container named {name} exists that this controller does not own; "
        "remove or rename it and the workspace will be created"
    )


def _container_status(container: ObservedContainer | None, digest: str | None) -> ContainerStatus | None:
    if container is None:
        return None
    return ContainerStatus(
        name=container.name,
        id=container.id,
        image=container.image,
        image_id=container.image_id or None,
        image_digest=digest,
        state=container.state,
        health=container.health,
        started_at=format_time(container.started_at) if container.started_at else None,
        finished_at=format_time(container.finished_at)
        if container.finished_at and container.state != "running"
        else None,
        restart_count=container.restart_count,
        exit_code=container.exit_code,
        oom_killed=container.oom_killed,
        config_hash=labels.read_config_hash(container.labels),
    )


def _with_nulls(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning ``old`` into ``new``: fields ``new`` no longer has are set to null.

    Objects merge recursively; lists (conditions) are replaced whole, as merge patch always does.
    """
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            patch[key] = _with_nulls(before, value)
        else:
            patch[key] = value
    return patch


def _validation_message(exc: ValidationError) -> str:
    problems = [f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors()[:5]]
    return "invalid spec: " + "; ".join(problems)
