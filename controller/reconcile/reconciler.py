"""The reconcile: read one Workspace and what the runtime has, converge, report.

Level-based and idempotent, whatever woke it (create, update, a controller restart, a resync, a Docker
event). The story of one pass, in order: lock → resolve inputs → plan → observe → decide → execute →
build status → patch. Every decision is pure and lives in `controller.core`; everything specific to a
container engine is behind the `ContainerRuntime` port, everything specific to Kubernetes behind `KubeApi`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from controller import metrics
from controller.api.workspace import (
    WORKSPACE_ID_IMMUTABLE_MESSAGE,
    AdoptedStatus,
    ContainerStatus,
    HibernationStatus,
    WorkspaceSpec,
    WorkspaceStatus,
)
from controller.core import labels, naming
from controller.core.backoff import backoff
from controller.core.causes import Cause, Reason
from controller.core.conditions import ConditionType, find_condition, format_time
from controller.core.configfiles import new_auth_token
from controller.core.crashloop import RestartHistory, crash_loop_cause
from controller.core.decide import (
    ACTIVE_STATES,
    START_ATTEMPTS,
    Denied,
    History,
    Observation,
    Rejection,
    Replace,
    Suspend,
    decide,
    follow_up,
    rejection,
    reported_stall,
    session_reset_handled,
)
from controller.core.expiry import expired, seconds_until, shutdown_at
from controller.core.failures import Step, runtime_failure
from controller.core.hibernation import (
    Activity,
    idle_long_enough,
    judge,
    sample_due,
    sample_every,
    sampled,
)
from controller.core.identity import WorkspaceRef
from controller.core.image_refresh import Check, check, checks, image_status
from controller.core.isolation import gateway_name, is_isolated
from controller.core.own_writes import OwnWrites
from controller.core.placement import Unschedulable, placement_conflict, runtime_missing
from controller.core.plan import ContainerPlan, ResolvedInputs, plan_workspace
from controller.core.policy import policy_denial
from controller.core.pools import (
    NOT_POOLED_ISOLATED,
    NOT_POOLED_TOKEN,
    bound_ref,
    confirmed,
    may_claim,
    slot_ref,
    unbound_message,
)
from controller.core.progress import deadline_left
from controller.core.redact import redact_cause
from controller.core.start_first import (
    DRAIN_SECONDS,
    RETRY_FAILED_AFTER,
    Abandon,
    FailedRollout,
    Retire,
    StartNext,
    next_name,
    ready,
    retired_name,
)
from controller.core.status import (
    PassOutcome,
    build_status,
    interim_status,
    previous_status,
    status_changed,
    warnings,
)
from controller.core.templates import template_name
from controller.kube.client import ApiError, KubeApi
from controller.kube.event_recorder import EventRecorder
from controller.kube.inputs import InputResolver
from controller.kube.merge_patch import merge_patch
from controller.kube.referenced_objects import ReferencedObjects
from controller.kube.workspace_object import FLUX_REQUESTED_AT, WorkspaceObject
from controller.port.errors import ContainerRuntimeError, InUse, RuntimeUnavailable
from controller.port.values import ObservedContainer
from controller.reconcile.actions import ActionRunner, Journal, StepFailed
from controller.reconcile.hosts import Host, HostRegistry
from controller.reconcile.identities import IdentityIndex
from controller.reconcile.image_digests import ImageDigests
from controller.reconcile.policies import PolicyStore
from controller.reconcile.pools import PoolManager, SlotTemplate
from controller.reconcile.registry_digests import RegistryDigests
from controller.reconcile.templates import Resolved, TemplateStore
from controller.reconcile.workspace_series import WorkspaceSeries
from controller.settings import ControllerSettings

log = logging.getLogger(__name__)

DEADLINE_EXCEEDED_REQUEUE = 60.0
"""Seconds between passes of a Workspace past its progress deadline (Docker events still wake it)."""
RETRY_EXPIRED_DELETE = 10.0
"""Seconds before an expired Workspace whose deletion the API refused is deleted again."""


@dataclass(frozen=True)
class Result:
    """What the loop does next: `requeue_after` seconds (None: wait for a trigger or the resync)."""

    result: str  # success | error | requeue_after (controller-runtime's metric values)
    requeue_after: float | None = None


@dataclass
class _Memory:
    """Per-Workspace state kept between passes (lost on restart: everything here can be re-learned)."""

    failures: int = 0
    restarts: RestartHistory = field(default_factory=RestartHistory)
    digests: dict[str, str] = field(default_factory=dict)  # "<image id> <ref>" -> repo@digest
    # The status this controller last reported. The Workspace a pass reads can predate it (the watch
    # event of our own status write may not have arrived yet); transitions are judged against this.
    reported: WorkspaceStatus | None = None
    rejected: Rejection | None = None
    name_conflict: bool = False
    retired_since: float | None = None
    """Monotonic seconds since a StartFirst switch retired the previous container (None: none is)."""
    failed_rollout: FailedRollout | None = None
    """The last StartFirst rollout that failed (its configuration is held until the retry time)."""
    image_applied: str | None = None
    """The registry digest an image update was last applied for (`image_refresh.judge`)."""
    failed_starts: tuple[str, int] = ("", 0)
    """The container whose start failed last, and how many times in a row."""
    session_reset_handled: str | None = None
    host: str | None = None
    """The DockerHost the Workspace is on, once known (placement is for good)."""
    settled_on: str | None = None
    """The host whose observer was last told the Workspace is settled there (None: none was)."""
    searched: frozenset[str] | None = None
    """The hosts that all answered a search for its container, none having one: from then on only this
    controller can make one there, and it places the Workspace first. A host added since is searched."""
    activity: Activity | None = None
    """spec.hibernation: the last sample of the container's received bytes."""
    sampled_at: tuple[str, float] | None = None
    """spec.hibernation: the container the last sample was of, and when (seconds since the epoch)."""
    idle: bool = False
    """spec.hibernation: the samples found no traffic for idleAfter (the next pass hibernates it)."""
    expiry_told: bool = False
    """The Expired Event was posted for the shutdown time that has come."""
    slot: str = ""
    """The warm slot this pass bound the Workspace to (until the watch brings its annotation)."""
    claim_tried: bool = False
    """A warm slot was looked for (once: a Workspace no slot served is made cold)."""


@dataclass
class _Pass:
    """One pass in progress: its Workspace, what it did so far, and the status as last written."""

    obj: WorkspaceObject
    journal: Journal = field(default_factory=Journal)
    written: Mapping[str, Any] = field(default_factory=dict)
    refresh_in: float | None = None
    """Seconds until spec.imageUpdate's next registry check is due."""
    expires_in: float | None = None
    """Seconds until the Workspace is due to shut down (spec.shutdownTime, spec.shutdownAfter)."""
    paused: Cause | None = None
    """Why the pass keeps the container stopped although spec.suspend is false (Expired, Hibernated)."""
    hibernation: HibernationStatus | None = None
    hibernation_known: bool = False
    """Whether `hibernation` is this pass's word on status.hibernation (else the last one is kept)."""
    sample_in: float | None = None
    """Seconds until the container's traffic is sampled again (spec.hibernation)."""
    denied: Cause | None = None
    """Why nothing of the spec may run, decided before the pass (its template cannot be applied)."""
    resolved: tuple[str, int] | None = None
    """The agent runtime and tier of the spec as resolved (shown in the status)."""

    @functools.cached_property
    def previous(self) -> WorkspaceStatus:
        """The status the pass started from, parsed once (what every status write builds on)."""
        return previous_status(self.obj.status)


class Reconciler:
    def __init__(
        self,
        *,
        hosts: HostRegistry,
        kube: KubeApi,
        settings: ControllerSettings,
        events: EventRecorder,
        policies: PolicyStore,
        objects: ReferencedObjects | None = None,
        templates: TemplateStore | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._hosts = hosts
        self.templates = (
            templates if templates is not None else TemplateStore(kube, wake_namespace=lambda _: None)
        )
        self._scheduler = hosts.scheduler
        self._policies = policies
        self._kube = kube
        self._settings = settings
        # Without a watch to keep them current, referenced objects are read afresh on every pass.
        self.referenced = (
            objects if objects is not None else ReferencedObjects(kube, wake=lambda _: None, max_age=0.0)
        )
        self._inputs = InputResolver(kube, self.referenced)
        self._events = events
        self._clock = clock
        self._memory: dict[str, _Memory] = {}
        self._stored: dict[str, OwnWrites] = {}  # uid -> the status this controller left stored, and lately
        self._locks: dict[str, asyncio.Lock] = {}
        self._finalized: set[str] = set()
        self.identities = IdentityIndex()
        self.registry_digests = RegistryDigests(clock=clock)
        self._series = WorkspaceSeries()
        self._image_digests = ImageDigests()
        self.pools: PoolManager | None = None
        """Warm pools (set by the operator): a new Workspace of a pool's template is bound to a slot."""

    def forget(self, ref: WorkspaceRef) -> None:
        """Drop what is remembered of a Workspace that is gone (its room on its host included)."""
        uid = ref.uid
        self._memory.pop(uid, None)
        self._stored.pop(uid, None)
        self.referenced.forget(uid)
        self._series.remove(ref)
        if self.identities.conflict(ref) is None:  # the names are its (a rival's are not its to forget)
            for host in self._hosts.all():
                host.observer.forget(naming.container_name(ref.workspace_id))
        self._scheduler.release(uid)
        lock = self._locks.get(uid)
        if lock is not None and not lock.locked():
            del self._locks[uid]

    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    # -- the reconcile ---------------------------------------------------------------------------------

    async def reconcile(self, obj: WorkspaceObject, *, fresh: bool = False) -> Result:
        """One pass. `fresh` asks to inspect the container rather than trust the last batched list."""
        # One pass at a time per Workspace, and none after its finalizer ran: a deletion never races a
        # pass that is still creating the container.
        async with self._lock(obj.ref.uid):
            if obj.ref.uid in self._finalized:
                return Result("success")
            memory = self._memory.setdefault(obj.ref.uid, _Memory())
            obj = _with_slot(obj, memory)
            stored = self._stored.get(obj.ref.uid)
            if stored is not None and stored.behind(obj.status, time.monotonic()):
                # Read before the watch brought this controller's latest write: that is the status now.
                obj = dataclasses.replace(obj, status=stored.latest)
            resolved = await self._resolved(obj)
            if isinstance(resolved, PassOutcome):
                work = _Pass(obj, written=obj.status)
                outcome = resolved
            elif isinstance(resolved, Cause):
                # The spec cannot be realised as written: like a denial, nothing of it may run (what ran
                # stops, its volumes kept), and expiry still applies to what the Workspace says itself.
                work = _Pass(obj, written=obj.status, denied=resolved)
                outcome = await self._converge(work, memory, fresh=fresh)
                outcome = dataclasses.replace(outcome, paused=work.paused)
            else:
                obj = dataclasses.replace(obj, spec=resolved.spec)
                work = _Pass(obj, written=obj.status)
                outcome = await self._converge(work, memory, fresh=fresh)
                outcome = dataclasses.replace(
                    outcome,
                    runtime=work.resolved[0] if work.resolved else None,
                    tier=work.resolved[1] if work.resolved else None,
                    template=resolved.template,
                    template_known=True,
                    paused=work.paused,
                    hibernation=work.hibernation,
                    hibernation_known=work.hibernation_known,
                )
            # The last reset known done: once per token, even if the pass failed after emptying the volume.
            memory.session_reset_handled = (
                work.journal.session_reset or outcome.session_handled or memory.session_reset_handled
            )
            memory.failures = memory.failures + 1 if outcome.error is not None else 0
            if outcome.error is None:
                memory.failed_starts = ("", 0)
            # A foreign container holding our name is invisible to the labeled list: the next pass
            # inspects it directly, so that its removal is noticed.
            memory.name_conflict = (
                outcome.stalled is not None and outcome.stalled.reason == Reason.NAME_CONFLICT
            )
            await self._report(work, outcome, memory)
        if outcome.error is not None:
            self._settle(obj, outcome, memory, settled=False)
            return Result("error", backoff(memory.failures))
        requeue = work.journal.requeue_after
        if requeue is None and outcome.plan is not None and outcome.stalled is None:
            requeue = follow_up(outcome.container)
            if memory.reported is not None:
                requeue = _paced(requeue, memory.reported, outcome.plan, self._clock())
        if work.refresh_in is not None:
            requeue = work.refresh_in if requeue is None else min(requeue, work.refresh_in)
        self._settle(obj, outcome, memory, settled=requeue is None)
        for due in (work.expires_in, work.sample_in):  # due whether or not the Workspace is settled
            if due is not None:
                requeue = due if requeue is None else min(requeue, due)
        return Result("requeue_after", requeue) if requeue is not None else Result("success")

    def _settle(self, obj: WorkspaceObject, outcome: PassOutcome, memory: _Memory, *, settled: bool) -> None:
        """Tell the host's observer whether this pass left the Workspace settled: its container running
        (and healthy, if it has a health check) with the configuration the plan wants, nothing failing,
        stalled or due. A settled Workspace is left out of the resync's wake-ups while the list shows
        its container unchanged: a fleet at rest costs one list per resync and nothing per Workspace."""
        container = outcome.container
        steady = (
            settled
            and outcome.host is not None
            and outcome.plan is not None
            and outcome.error is None
            and outcome.stalled is None
            and not outcome.serving_previous
            and container is not None
            and ready(container)
            and labels.read_config_hash(container.labels) == outcome.plan.config_hash
        )
        name = naming.container_name(obj.ref.workspace_id)
        on = outcome.host if steady else None
        if memory.settled_on is not None and memory.settled_on != on:
            previous = self._hosts.get(memory.settled_on)
            if previous is not None:
                previous.observer.settle(name, None)
        if on is not None:
            host = self._hosts.get(on)
            if host is not None:
                host.observer.settle(name, container)
            else:
                on = None
        memory.settled_on = on

    async def _resolved(self, obj: WorkspaceObject) -> Resolved | Cause | PassOutcome:
        """The spec with its WorkspaceTemplate's fields in it; a Cause when it cannot be had (the template
        is missing, or pinned what the spec sets: the pass stops the container, keeping it, and reports
        Stalled); a PassOutcome when the API did not answer (retried, nothing changed)."""
        suspended = obj.spec.get("suspend") is True
        try:
            resolved = await self.templates.resolve(obj.ref.namespace, obj.spec)
        except ApiError as exc:
            cause = Cause(Reason.RECONCILE_ERROR, f"Kubernetes API: {exc}")
            return PassOutcome(error=cause, suspended=suspended)
        return resolved

    async def _converge(self, work: _Pass, memory: _Memory, *, fresh: bool) -> PassOutcome:
        obj = work.obj
        try:
            spec = WorkspaceSpec.model_validate(obj.spec)
        except ValidationError as exc:
            return PassOutcome(stalled=Cause(Reason.INVALID_SPEC, _validation_message(exc)))
        work.resolved = (spec.runtime, spec.tier)
        spec = self._hibernation(work, await self._expiry(work, spec, memory), memory)
        if work.denied is None and self.pools is not None and not memory.claim_tried:
            memory.claim_tried = True
            if not spec.suspend and may_claim(obj.spec, obj.status, obj.ref):
                obj = await self._claim(work, spec, memory)
        recorded = obj.status.get("workspaceID")
        if recorded and recorded != obj.ref.workspace_id:
            # The schema refuses the change; this holds where its rule is not enforced: the objects keep
            # their names, nothing is renamed (a rename would start the agent on empty volumes).
            message = f"{WORKSPACE_ID_IMMUTABLE_MESSAGE} (its objects are named from {recorded})"
            return PassOutcome(stalled=Cause(Reason.INVALID_SPEC, message), suspended=spec.suspend)
        conflict = self.identities.conflict(obj.ref)
        if conflict is not None:
            return PassOutcome(stalled=conflict, suspended=spec.suspend)
        plan: ContainerPlan | None = None
        try:
            desired = await self._desired(obj, spec, work.denied)
            if isinstance(desired, PassOutcome):
                return desired
            plan = desired if isinstance(desired, ContainerPlan) else None
            token_secret = plan.auth_token_secret if plan else None
            located = await self._host_for(work, spec, memory, place=plan is not None)
            if not isinstance(located, Host):
                if located is None:  # suspended or denied, and never placed: nothing runs anywhere
                    denial = desired.cause if isinstance(desired, Denied) else None
                    located = PassOutcome(observed=True, stalled=denial)
                return dataclasses.replace(
                    located, plan=plan, token_secret=token_secret, suspended=spec.suspend
                )
            host = located
            lacking = runtime_missing(spec.container_runtime, host.runtimes)
            if lacking is not None and not isinstance(desired, Suspend | Denied):
                # Placed for good on a host that does not offer the runtime: what runs there (under
                # another runtime) must not go on running as if it complied.
                placed = f"DockerHost {host.name}, where the Workspace is placed (its volumes are there)"
                desired = Denied(Cause(Reason.UNSCHEDULABLE, f"{placed}, {lacking}"))
            observed = await self._observe(
                obj,
                memory,
                host,
                fresh=fresh,
                start_first=plan is not None and plan.start_first,
                recorded=work.previous.container,
            )
            if not observed.owned and not confirmed(obj.ref, obj.status, memory.slot):
                # Bound only by an annotation: it holds where the slot's container is this namespace's
                # (a crash between the binding and its status); else nothing is made under that ID.
                warm = await host.observer.observe(naming.warm_name(obj.ref.slot))
                if warm is None or not labels.owns(warm.labels, self._settings.instance, obj.ref):
                    cause = Cause(Reason.SLOT_NOT_BOUND, unbound_message(obj.ref.slot, obj.ref.namespace))
                    return PassOutcome(stalled=cause, suspended=spec.suspend, host=host.name)
                memory.slot = obj.ref.slot
            history = self._history(obj, memory, observed, plan, work.previous)
            refresh = await self._refresh(work, plan, host, observed, memory)
            if refresh is not None and refresh.verdict.apply:
                history = dataclasses.replace(history, image_update=True)
            action = decide(desired, observed, history, time.monotonic())
            ours = observed.container if observed.owned else None
            runner = self._runner(
                work, host, PassOutcome(plan=plan, container=ours, token_secret=token_secret, host=host.name)
            )
            container = await runner.run(action, plan, ours, work.journal)
            gateway_error: Cause | None = None
            try:
                gateway_port = await runner.gateway(
                    obj.ref,
                    naming.container_name(obj.ref.workspace_id),
                    plan.gateway if plan is not None else None,
                    work.journal,
                    active=plan is not None and not isinstance(desired, Suspend | Denied),
                    isolated=is_isolated(spec.network),
                    agent_current=plan is None
                    or container is None
                    or labels.read_config_hash(container.labels) == plan.config_hash,
                )
            except StepFailed as failed:
                if failed.failure.stalled:
                    raise
                # The agent's part of the pass stands; the gateway is tried again (Ready says it is down).
                gateway_port, gateway_error = None, failed.failure.cause
            await self._sample_traffic(work, spec, memory, host, container)
            digest = await self._digest(host, container, plan, memory)
            if isinstance(action, Replace | StartNext) and action.pull and refresh is not None:
                memory.image_applied = refresh.verdict.update_available
            journal = work.journal
            if isinstance(action, Abandon) and journal.rollout_failed is not None and plan is not None:
                retry_at = time.monotonic() + RETRY_FAILED_AFTER
                memory.failed_rollout = FailedRollout(plan.config_hash, retry_at, journal.rollout_failed)
            if journal.promoted:
                memory.retired_since = time.monotonic()
                memory.failed_rollout = None
            elif observed.retired is not None and not isinstance(action, Retire):
                # The previous container drains: the pass when its drain ends retires it (whatever woke
                # this one meanwhile; a settled Workspace is not woken by the resync).
                due = max(0.0, DRAIN_SECONDS - history.retired_for) + 0.5
                journal.requeue_after = min(journal.requeue_after or due, due)
            asks = refresh is None and plan is not None and plan.image_update is not None
            if asks and container is not None and container.state in ACTIVE_STATES:
                work.refresh_in = 1.0  # just made or started: its first check, from the next pass
            return PassOutcome(
                adopted=self._adopted(work),
                plan=plan,
                container=container,
                observed=True,
                host=host.name,
                image_digest=digest,
                image=image_status(plan.image_update, refresh, running=digest, applied=memory.image_applied)
                if plan is not None and plan.image_update is not None and refresh is not None
                else None,
                # Cleared when the spec asks no more; kept while there is nothing to check (not running).
                image_known=plan is not None and (refresh is not None or plan.image_update is None),
                progressing=work.journal.progressing,
                error=journal.rollout_failed or gateway_error,
                serving_previous=_serving_previous(plan, container),
                stalled=reported_stall(action),
                token_secret=token_secret,
                session_handled=session_reset_handled(
                    plan, history, container, reset_now=work.journal.session_reset is not None
                ),
                suspended=spec.suspend,
                gateway_port=gateway_port,
                gateway_checked=True,
            )
        except StepFailed as failed:
            failure = failed.failure
            if failed.unstarted is not None:
                last, count = memory.failed_starts
                memory.failed_starts = (failed.unstarted, count + 1 if last == failed.unstarted else 1)
        except ContainerRuntimeError as exc:
            failure = runtime_failure(exc, Step.OTHER, container=naming.container_name(obj.ref.workspace_id))
        except ApiError as exc:
            cause = Cause(Reason.RECONCILE_ERROR, f"Kubernetes API: {exc}")
            return PassOutcome(plan=plan, error=cause, suspended=spec.suspend)
        on = self._hosts.get(memory.host) if memory.host else None
        # A runtime's error may quote what it was given (an env entry, a credential): never a Secret's value.
        cause = redact_cause(failure.cause, plan.secret_values) if plan is not None else failure.cause
        if failure.stalled and cause.reason == Reason.CONTAINER_REJECTED and plan is not None:
            memory.rejected = rejection(plan, cause, time.monotonic())
        after, known, digest = await self._look_again(obj, on, plan, memory, cause)
        return PassOutcome(
            adopted=self._adopted(work),
            plan=plan,
            container=after,
            observed=known,
            host=memory.host,
            image_digest=digest,
            progressing=work.journal.progressing,
            error=None if failure.stalled else cause,
            stalled=cause if failure.stalled else None,
            token_secret=plan.auth_token_secret if plan else None,
            suspended=spec.suspend,
        )

    async def _claim(self, work: _Pass, spec: WorkspaceSpec, memory: _Memory) -> WorkspaceObject:
        """Bind a new Workspace to a warm slot of a pool of its template whose container is the one its
        own spec makes under the slot's identity (`core.pools`); the Workspace as the pass goes on with
        it (bound, or as it was: made cold)."""
        obj = work.obj
        pools = self.pools
        template = template_name(obj.spec)
        if pools is None or template is None:
            return obj
        if not pools.pools_of(obj.ref.namespace, template):
            return obj  # no pool of its template: not counted
        bound = await self._bind(work, spec, memory, pools, template)
        result = "bound" if bound is not obj else "cold"
        metrics.POOL_CLAIMS.labels(obj.ref.namespace, template, result).inc()
        return bound

    async def _bind(
        self, work: _Pass, spec: WorkspaceSpec, memory: _Memory, pools: PoolManager, template: str
    ) -> WorkspaceObject:
        obj = work.obj
        candidates = pools.candidates(obj.ref.namespace, template)
        if not candidates:
            return obj
        grant = await self._policies.grant(obj.ref.namespace)
        if policy_denial(spec, obj.ref.namespace, grant, self._policies.default_image_prefix) is not None:
            return obj
        # The first candidate is kept for this Workspace while its inputs are read: a token Secret made
        # now is made with the token that slot already has, so binding it writes no file.
        first = candidates[0]
        offered = pools.hold(first, obj.ref.uid)
        inputs: ResolvedInputs | Cause | None = None
        try:
            inputs = await self._inputs.resolve(obj.ref, spec, new_token=offered)
            if isinstance(inputs, Cause):
                return obj
            for slot in candidates:
                bound = bound_ref(obj.ref, slot.id)
                plan = plan_workspace(bound, spec, inputs, self._settings, grant)
                if (
                    isinstance(plan, Cause)
                    or plan.gateway is not None
                    or plan.config_hash != slot.config_hash
                ):
                    continue
                if not await pools.bind(obj.ref, slot, plan):
                    continue
                memory.slot, memory.host = slot.id, slot.host
                work.obj = dataclasses.replace(obj, ref=bound)
                where = f"WorkspacePool {slot.pool} on DockerHost {slot.host}"
                work.journal.note("Claimed", f"bound to warm container {plan.name} of {where}")
                return work.obj
            return obj
        finally:
            given = (
                offered is not None and isinstance(inputs, ResolvedInputs) and inputs.auth_token == offered
            )
            pools.let_go(first.id, obj.ref.uid, token_given=given and memory.slot != first.id)

    async def slot_template(self, namespace: str, pool: str, spec: Mapping[str, Any]) -> SlotTemplate | Cause:
        """What the warm slots of WorkspacePool `pool` are made from now (its template, as a Workspace
        naming it and nothing else would be), or why none can be made."""
        resolved = await self.templates.resolve(namespace, spec)
        if isinstance(resolved, Cause):
            return resolved
        try:
            model = WorkspaceSpec.model_validate(resolved.spec)
        except ValidationError as exc:
            return Cause(Reason.INVALID_SPEC, _validation_message(exc))
        grant = await self._policies.grant(namespace)
        denial = policy_denial(model, namespace, grant, self._policies.default_image_prefix)
        if denial is not None:
            return denial
        if is_isolated(model.network):
            return Cause(Reason.NOT_POOLABLE, NOT_POOLED_ISOLATED)
        if model.auth_token is not None and model.auth_token.secret_ref is not None:
            return Cause(Reason.NOT_POOLABLE, NOT_POOLED_TOKEN)
        # The inputs a Workspace of the template reads (env from Secrets, ConfigMaps, pull secrets), but
        # its token: each Workspace's own, written when it is bound (a stand-in plans the same file).
        probe = WorkspaceRef(uid=f"pool/{namespace}/{pool}", namespace=namespace, name=pool)
        inputs = await self._inputs.resolve(probe, model.model_copy(update={"auth_token": None}))
        if isinstance(inputs, Cause):
            return inputs
        if model.auth_token is not None:
            inputs = dataclasses.replace(inputs, auth_token=new_auth_token())

        def plan(slot: str) -> ContainerPlan | Cause:
            return plan_workspace(slot_ref(namespace, pool, slot), model, inputs, self._settings, grant)

        request = self._scheduler.request(model.tier, model.container_runtime)
        return SlotTemplate(plan, request, model.placement)

    async def _expiry(self, work: _Pass, spec: WorkspaceSpec, memory: _Memory) -> WorkspaceSpec:
        """The spec as this pass drives it: suspended once its shutdown time has come (and, with
        shutdownPolicy Delete, the Workspace deleted); else the time is remembered to wake the loop then."""
        at = shutdown_at(spec, work.obj.created)
        if at is None or spec.suspend:
            return spec
        now = self._clock()
        if now < at:
            work.expires_in = seconds_until(at, now)
            memory.expiry_told = False
            return spec
        work.paused = expired(spec, at)
        if work.previous.phase != "Expired" and not memory.expiry_told:
            work.journal.events.append(("Normal", Reason.EXPIRED, work.paused.message))
        memory.expiry_told = True
        if spec.shutdown_policy == "Delete":
            ref = work.obj.ref
            try:
                await self._kube.delete_workspace(ref.namespace, ref.name, ref.uid)
            except ApiError as exc:  # stopped meanwhile; the next pass deletes again
                log.warning("deleting the expired Workspace %s failed: %s", ref, exc)
                work.expires_in = RETRY_EXPIRED_DELETE
        return spec.model_copy(update={"suspend": True})

    def _hibernation(self, work: _Pass, spec: WorkspaceSpec, memory: _Memory) -> WorkspaceSpec:
        """The spec as this pass drives it: suspended while the Workspace hibernates (found idle by the
        samples, and not woken since)."""
        if spec.suspend:  # suspended or expired: no traffic to judge; the status is kept as it is
            memory.activity, memory.idle = None, False
            return spec
        previous = work.previous.hibernation
        verdict = judge(spec, previous, idle=memory.idle, now=self._clock())
        work.hibernation, work.hibernation_known = verdict.status, True
        memory.idle = False
        if verdict.woken:
            memory.activity = None
            work.journal.events.append(("Normal", Reason.WOKEN, "woken: the container is started again"))
        if verdict.cause is None:
            return spec
        memory.activity = None
        if previous is None or previous.hibernated_at is None:
            work.journal.events.append(("Normal", Reason.HIBERNATED, verdict.cause.message))
        work.paused = verdict.cause
        return spec.model_copy(update={"suspend": True})

    async def _sample_traffic(
        self,
        work: _Pass,
        spec: WorkspaceSpec,
        memory: _Memory,
        host: Host,
        container: ObservedContainer | None,
    ) -> None:
        """spec.hibernation: one sample of what the running container received; idle long enough, the next
        pass (at once) hibernates it."""
        if spec.hibernation is None or spec.suspend or container is None or container.state != "running":
            memory.activity, memory.sampled_at = None, None
            return
        every, at = sample_every(spec), self._clock().timestamp()
        if memory.activity is not None and not sample_due(memory.sampled_at, container.id, at, every):
            assert memory.sampled_at is not None
            work.sample_in = max(0.1, every - (at - memory.sampled_at[1]))  # the sample still due
            return
        try:
            received = await host.runtime.network_received(container.id)
        except ContainerRuntimeError as exc:  # no sample this time; the clock goes on
            log.debug("traffic of %s not sampled: %s", container.name, exc)
            received = memory.activity.received if memory.activity is not None else None
        now = self._clock().timestamp()
        memory.activity = sampled(memory.activity, received, now)
        memory.sampled_at = (container.id, now)
        if idle_long_enough(spec, memory.activity, now):
            memory.idle = True
            work.sample_in = 0.1
        else:
            work.sample_in = every

    async def _desired(
        self, obj: WorkspaceObject, spec: WorkspaceSpec, denied: Cause | None = None
    ) -> ContainerPlan | Suspend | Denied | PassOutcome:
        """What the spec asks for, as `decide` takes it: denied before the pass (`denied`); suspended;
        denied by the namespace's grants; or the plan. A PassOutcome when no plan can be made (a missing
        Secret, an unknown runtime, ...)."""
        if denied is not None:
            return Denied(denied)
        if spec.suspend:
            return Suspend()
        namespace = obj.ref.namespace
        grant = await self._policies.grant(namespace)
        denial = policy_denial(spec, namespace, grant, self._policies.default_image_prefix)
        if denial is not None:
            return Denied(denial)
        inputs = await self._inputs.resolve(obj.ref, spec)
        if isinstance(inputs, Cause):
            return PassOutcome(stalled=inputs)
        plan = plan_workspace(obj.ref, spec, inputs, self._settings, grant)
        if isinstance(plan, Cause):
            return PassOutcome(stalled=plan, token_secret=inputs.auth_token_secret)
        return plan

    async def _look_again(
        self,
        obj: WorkspaceObject,
        host: Host | None,
        plan: ContainerPlan | None,
        memory: _Memory,
        cause: Cause,
    ) -> tuple[ObservedContainer | None, bool, str | None]:
        """After a failed step, the container as it now is (the step may have changed it) and its digest,
        so the status does not report one that is gone or stopped; not observed when the runtime cannot
        tell."""
        if host is None or cause.reason == Reason.DOCKER_UNAVAILABLE:
            return None, False, None
        try:
            observed = await self._observe(obj, memory, host, fresh=False)
            container = observed.container if observed.owned else None
            return container, True, await self._digest(host, container, plan, memory)
        except ContainerRuntimeError:
            return None, False, None

    async def _observe(
        self,
        obj: WorkspaceObject,
        memory: _Memory,
        host: Host,
        *,
        fresh: bool,
        start_first: bool = False,
        recorded: ContainerStatus | None = None,
    ) -> Observation:
        name = naming.container_name(obj.ref.workspace_id)
        container = await host.observer.observe(name, fresh=fresh or memory.name_conflict, recorded=recorded)
        # A StartFirst rollout's other containers: looked for when the spec asks for StartFirst, or when
        # the last list shows one (a rollout the spec no longer asks for is cleaned up).
        beside: list[ObservedContainer | None] = []
        for other in (next_name(name), retired_name(name)):
            wanted = start_first or host.observer.listed(other)
            beside.append(await host.observer.observe(other) if wanted else None)
        return Observation.of(
            container, instance=self._settings.instance, workspace=obj.ref, next_=beside[0], retired=beside[1]
        )

    # -- placement ------------------------------------------------------------------------------------

    async def _host_for(
        self, work: _Pass, spec: WorkspaceSpec, memory: _Memory, *, place: bool
    ) -> Host | PassOutcome | None:
        """The host the Workspace is on: where the status, the ledger or its container says; else, when
        `place`, where placement puts it now. None: on no host and not to be placed (suspended, denied).
        A PassOutcome when the pass cannot go on: Unschedulable, or its host is not there to be driven."""
        obj = work.obj
        uid = obj.ref.uid
        request = self._scheduler.request(spec.tier, spec.container_runtime)
        name = memory.host or obj.status.get("host") or self._scheduler.host_of(uid)
        if not name and not self._searched(memory):
            found = await self._find_container(obj, memory, waiting=place)
            if isinstance(found, PassOutcome):
                return found
            name = found
        if not name:
            if not place:
                return None
            result = await self._scheduler.place(uid, request, spec.placement)
            if isinstance(result, Unschedulable):
                return PassOutcome(stalled=result.cause)
            name = result.host
            work.journal.note("Placed", f"placed on DockerHost {name}")
        memory.host = name
        self._scheduler.record(uid, name, request)
        host = self._hosts.get(name)
        if host is None:
            message = (
                f"DockerHost {name}, where the Workspace is placed (its volumes are there), does not exist: "
                "create it again, or delete the Workspace"
            )
            return PassOutcome(error=Cause(Reason.DOCKER_UNAVAILABLE, message), host=name)
        await self._hosts.asked([host])
        if not host.ready:
            problem = host.problem or "its capacity is not known yet"
            message = f"DockerHost {name}: {problem}"
            return PassOutcome(error=Cause(Reason.DOCKER_UNAVAILABLE, message), host=name)
        conflict = placement_conflict(spec.placement, name, host.labels)
        if conflict is not None:
            return PassOutcome(stalled=conflict, host=name)
        return host

    def _searched(self, memory: _Memory) -> bool:
        return memory.searched is not None and {h.name for h in self._hosts.all()} <= memory.searched

    async def _find_container(
        self, obj: WorkspaceObject, memory: _Memory, *, waiting: bool
    ) -> str | PassOutcome | None:
        """The host where a container of this Workspace already is (its status was lost, or was written by
        a version that did not record the host, or by a controller that died before it could). While a
        host that could hold it does not answer, a Workspace that was ever reconciled and is `waiting`
        to be placed waits rather than risk a second container elsewhere; one that is not to be placed
        (suspended, denied) goes on with what the answering hosts say."""
        name = naming.container_name(obj.ref.workspace_id)
        await self._hosts.asked()
        silent = [host.name for host in self._hosts.all() if not host.ready]
        answering = [host for host in self._hosts.all() if host.ready]
        # Our containers are in each host's list: a new Workspace costs no Docker call. A stranger's
        # container under the name is not, and only a name made from the platform's ID (spec.workspaceID)
        # can be a stranger's (the Go provisioner's): then the name is inspected on every host at once, so
        # that the Workspace goes where it is, never beside it. A uid's name is nobody else's.
        fresh = bool(obj.ref.platform_id) or obj.spec.get("adopt") is True
        found = await asyncio.gather(
            *(host.observer.observe(name, fresh=fresh) for host in answering), return_exceptions=True
        )
        for host, container in zip(answering, found, strict=True):
            if isinstance(container, ContainerRuntimeError):
                silent.append(host.name)
            elif isinstance(container, BaseException):
                raise container
            elif container is not None:
                # Ours; or someone else's holding the name (the Go provisioner's, to adopt?): the
                # Workspace belongs where its name is taken, to take it over or be told of the conflict,
                # never beside it on another host. The labelled list cannot show a stranger's container,
                # so the passes inspect the name.
                if not Observation.of(container, instance=self._settings.instance, workspace=obj.ref).owned:
                    memory.name_conflict = True
                return host.name
        if not silent:
            memory.searched = frozenset(h.name for h in answering)
        elif waiting and obj.status:
            waiting_cause = Cause(
                Reason.PLACING,
                f"waiting for DockerHost {', '.join(silent)} to answer before placing the Workspace: "
                "a container of it may be there",
            )
            return PassOutcome(
                progressing=waiting_cause, error=Cause(Reason.DOCKER_UNAVAILABLE, waiting_cause.message)
            )
        return None

    def _history(
        self,
        obj: WorkspaceObject,
        memory: _Memory,
        observed: Observation,
        plan: ContainerPlan | None,
        previous: WorkspaceStatus,
    ) -> History:
        container = observed.container if observed.owned else None
        crash_loop = None
        if container is not None:
            if container.detail and container.restart_count is not None:
                memory.restarts.observe(
                    container.id,
                    container.restart_count,
                    time.monotonic(),
                    self._settings.crashloop_window_seconds,
                )
            crash_loop = crash_loop_cause(
                memory.restarts.episode(container.id),
                self._settings.crashloop_restarts,
                self._settings.crashloop_window_seconds,
                container.exit_code,
                container.oom_killed,
            )
        # The last reset this controller performed wins over a status that may not show it yet.
        handled = memory.session_reset_handled or (obj.status.get("session") or {}).get("lastResetHandled")
        last, count = memory.failed_starts
        if observed.retired is None:
            memory.retired_since = None
        elif memory.retired_since is None:
            memory.retired_since = time.monotonic()  # found draining (e.g. after a restart): from now
        return History(
            session_reset_handled=handled,
            rejected=memory.rejected,
            crash_loop=crash_loop,
            unstartable=last if count >= START_ATTEMPTS else None,
            retired_for=time.monotonic() - memory.retired_since if memory.retired_since is not None else 0.0,
            rollout_deadline_passed=self._rollout_overdue(memory.reported or previous, plan),
            failed_rollout=memory.failed_rollout,
        )

    def _rollout_overdue(self, reported: WorkspaceStatus, plan: ContainerPlan | None) -> bool:
        """The plan's configuration has been rolling out (status.rollout) past its progress deadline."""
        if plan is None:
            return False
        rollout = reported.rollout
        if rollout is None or rollout.config_hash != plan.config_hash:
            return False
        left = deadline_left(rollout, plan.progress_deadline_seconds, self._clock())
        return left is not None and left <= 0

    def _runner(self, work: _Pass, host: Host, before: PassOutcome) -> ActionRunner:
        """An ActionRunner for this pass on `host`; work in progress is reported on top of `before`."""

        async def report_progress(cause: Cause) -> None:
            await self._report_progress(work, dataclasses.replace(before, progressing=cause))

        return ActionRunner(
            host.runtime,
            host.observer,
            instance=self._settings.instance,
            report_progress=report_progress,
            post_soon=self._events.post_soon,
            host=host.name,
            adopted=work.previous.adopted.volumes if work.previous.adopted is not None else (),
            exists=self.identities.follows,
            pulls=host.pulls,
            pull_window=self._settings.pull_window_seconds,
        )

    def _adopted(self, work: _Pass) -> AdoptedStatus | None:
        """What this pass took over, added to what the Workspace took over before."""
        journal = work.journal
        if journal.adopted_container is None and not journal.adopted_volumes:
            return None
        before = work.previous.adopted or AdoptedStatus()
        volumes = tuple(dict.fromkeys((*before.volumes, *journal.adopted_volumes)))
        return AdoptedStatus(
            container=journal.adopted_container or before.container,
            volumes=volumes,
            adopted_at=before.adopted_at
            if before.adopted_at and not journal.adopted_container
            else format_time(self._clock()),
        )

    async def _refresh(
        self,
        work: _Pass,
        plan: ContainerPlan | None,
        host: Host,
        observed: Observation,
        memory: _Memory,
    ) -> Check | None:
        """spec.imageUpdate: the registry's digest for the tag (shared across Workspaces per interval)
        and what to do about it; None when the Workspace does not ask, or runs nothing of ours yet."""
        if plan is None or plan.image_update is None or not checks(plan.image_update, plan.image):
            return None
        container = observed.container if observed.owned else None
        if container is None or container.state not in ACTIVE_STATES:
            return None
        update = plan.image_update
        # What this controller last reported wins over a Workspace read before that write arrived.
        image = (memory.reported or work.previous).image
        handled = image.last_apply_handled if image is not None else None
        pending = update.apply_requested_at is not None and update.apply_requested_at != handled
        # An approval asks the registry now rather than trust an answer up to an interval old.
        max_age = 0.0 if pending else float(update.interval_seconds)
        answer = await self.registry_digests.latest(host.runtime, plan.image, plan.pull_credentials, max_age)
        # Just after the answer expires: a new digest is seen within one interval of its push.
        work.refresh_in = self.registry_digests.due_in(answer, update.interval_seconds) + 0.5
        running = await self._digest(host, container, plan, memory)
        return check(
            update, plan.image, answer, running=running, handled=handled, applied=memory.image_applied
        )

    async def _digest(
        self,
        host: Host,
        container: ObservedContainer | None,
        plan: ContainerPlan | None,
        memory: _Memory,
    ) -> str | None:
        """status.container.imageDigest: ``<repository>@sha256:...``, the digest the image resolved to."""
        if container is None or plan is None or not container.image_id:
            return None
        ref = container.image or plan.image
        key = f"{container.image_id} {ref}"
        known = memory.digests.get(key)
        if known is None:
            known = await self._image_digests.of(host.name, host.runtime, container.image_id, ref)
            if known is None:
                return None
            memory.digests = {key: known}
        return known

    # -- deletion -------------------------------------------------------------------------------------

    async def finalize(self, obj: WorkspaceObject) -> None:
        """Remove the container (force), then the volumes if the policy says Delete.

        The status says Terminating meanwhile. Raises ContainerRuntimeError on failure (reported as
        Synced=False): the finalizer stays and the deletion is retried.
        """
        async with self._lock(obj.ref.uid):
            work = _Pass(obj, written=obj.status)
            await self._write_status(work, PassOutcome(deleting=True))
            try:
                await self._finalize(obj)
            except ContainerRuntimeError as exc:
                failure = runtime_failure(
                    exc, Step.OTHER, container=naming.container_name(obj.ref.workspace_id)
                )
                await self._write_status(work, PassOutcome(deleting=True, error=failure.cause))
                raise

    async def _finalize(self, obj: WorkspaceObject) -> None:
        memory = self._memory.get(obj.ref.uid)
        if memory is not None:
            obj = _with_slot(obj, memory)
        ws = obj.ref
        name = naming.container_name(ws.workspace_id)
        policy = (obj.spec or {}).get("deletionPolicy", "Delete")
        remembered = memory.host if memory else None
        placed = remembered or obj.status.get("host") or self._scheduler.host_of(ws.uid)
        if placed:
            host = self._hosts.get(placed)
            if host is not None:
                await self._hosts.asked([host])
            if host is None:
                # The admin removed the DockerHost: as for a pod on a deleted Node, nothing is left to ask.
                await self._events.post(
                    ws,
                    "Warning",
                    "HostGone",
                    f"DockerHost {placed} no longer exists: the Workspace's container and volumes there "
                    "were not removed",
                )
                hosts = []
            elif not host.ready:
                raise RuntimeUnavailable(f"DockerHost {placed}: {host.problem or 'not Ready'}")
            else:
                hosts = [host]
        else:
            # Never placed, or its status was lost: wherever it may be (a host that does not answer now
            # is left to its orphan sweep, which removes what no Workspace owns).
            await self._hosts.asked()
            hosts = [h for h in self._hosts.all() if h.ready]
        owned = labels.owned_by(self._settings.instance, ws)
        ours = (name, next_name(name), retired_name(name), gateway_name(name))
        for host in hosts:
            # Every container labeled for this Workspace, whatever its name (a rename by hand included):
            # from the resync's list, taken again if this controller changed one of them since.
            for container in await host.observer.owned_by(ws, ours):
                await host.runtime.remove_container(container.id)
                host.observer.touched(container.name)
            host.observer.touched(name)
            # An isolated agent's internal network (labelled for it, like its volumes).
            for network in await host.runtime.list_networks(owned):
                with contextlib.suppress(InUse):
                    await host.runtime.remove_network(network)
            if policy == "Delete":
                # By the uid label, one call: by name alone another Workspace's volume could go (two
                # may claim one platform ID), and a volume the spec no longer mounts would stay for ever.
                for volume in await host.runtime.list_volumes(owned):
                    await host.runtime.remove_volume(volume.name)
                # Taken over from the Go provisioner: ours by the status only (Docker cannot label them).
                for volume_name in _adopted_volumes(obj.status):
                    await host.runtime.remove_volume(volume_name)
        self._finalized.add(ws.uid)
        kept = "volumes removed" if policy == "Delete" else "volumes retained (deletionPolicy Retain)"
        log.info("workspace %s deleted: container %s removed, %s", ws, name, kept)
        await self._events.post(ws, "Normal", "Deleted", f"removed container {name}; {kept}")
        self.forget(ws)

    # -- status ---------------------------------------------------------------------------------------

    async def _report(self, work: _Pass, outcome: PassOutcome, memory: _Memory) -> None:
        obj = work.obj
        previous = work.previous
        status = build_status(
            generation=obj.generation,
            previous=previous,
            outcome=outcome,
            reconcile_requested_at=obj.annotations.get(FLUX_REQUESTED_AT),
            now=self._clock(),
        )
        await self._patch(work, status)
        for type_, reason, message in work.journal.events:
            await self._events.post(obj.ref, type_, reason, message)
        for warning in warnings(memory.reported or previous, status):
            self._events.post_soon(obj.ref, "Warning", warning.reason, warning.message)
        memory.reported = status
        denied = outcome.stalled is not None and outcome.stalled.reason == Reason.POLICY_DENIED
        self._series.publish(obj.ref, obj.spec, status, denied=denied)

    async def _report_progress(self, work: _Pass, outcome: PassOutcome) -> None:
        """Show long work (a pull) while it goes on; best effort, the pass carries on regardless."""
        obj = work.obj
        previous = work.previous
        status = interim_status(
            generation=obj.generation, previous=previous, outcome=outcome, now=self._clock()
        )
        try:
            await self._patch(work, status)
        except ApiError as exc:
            log.warning("%s: could not report work in progress: %s", obj.ref, exc)

    async def _write_status(self, work: _Pass, outcome: PassOutcome) -> None:
        """The status of a Workspace being deleted; best effort (the deletion does not wait on it)."""
        obj = work.obj
        status = build_status(
            generation=obj.generation,
            previous=work.previous,
            outcome=outcome,
            reconcile_requested_at=None,
            now=self._clock(),
        )
        try:
            await self._patch(work, status)
        except ApiError as exc:
            log.warning("%s: could not report the deletion: %s", obj.ref, exc)

    async def _patch(self, work: _Pass, status: WorkspaceStatus) -> None:
        """Write `status` unless the stored one already says the same (a pass that changes nothing
        writes nothing)."""
        new = status.to_dict()
        if status_changed(work.written, new):
            ws = work.obj.ref
            # Before the write: its watch event may come before its answer.
            stored, now = self._stored.get(ws.uid), time.monotonic()
            self._stored[ws.uid] = (
                stored.wrote(work.written, new, now) if stored else OwnWrites.first(work.written, new, now)
            )
            await self._kube.patch_workspace_status(ws.namespace, ws.name, merge_patch(work.written, new))
            work.written = new
        else:
            stored = self._stored.get(work.obj.ref.uid)
            if stored is None or status_changed(stored.latest, work.written):
                self._stored[work.obj.ref.uid] = OwnWrites(work.written)

    def status_is_not_ours(self, uid: str, status: Mapping[str, Any]) -> bool:
        """Whether `status`, brought by the watch, is none this controller left stored lately (someone
        else wrote it): the next pass writes the truth again. False while nothing is known."""
        stored = self._stored.get(uid)
        return stored is not None and stored.foreign(status, time.monotonic())


def _with_slot(obj: WorkspaceObject, memory: _Memory) -> WorkspaceObject:
    """The Workspace bound to the slot a pass bound it to, before the watch brings its annotation."""
    if memory.slot and not obj.ref.slot and not obj.ref.platform_id:
        return dataclasses.replace(obj, ref=bound_ref(obj.ref, memory.slot))
    return obj


def _serving_previous(plan: ContainerPlan | None, container: ObservedContainer | None) -> bool:
    """Under StartFirst, a running container of an older configuration serves while its replacement is
    started beside it (or failed): it is what Ready speaks for."""
    if plan is None or not plan.start_first or container is None or container.state != "running":
        return False
    return labels.read_config_hash(container.labels) != plan.config_hash


def _paced(
    requeue: float | None, status: WorkspaceStatus, plan: ContainerPlan, now: datetime
) -> float | None:
    """Past its progress deadline a Workspace is looked at less often; before it, at the deadline (even if
    no Docker event comes)."""
    stalled = find_condition(status.conditions, ConditionType.STALLED)
    if stalled is not None and stalled.reason == Reason.PROGRESS_DEADLINE_EXCEEDED:
        return DEADLINE_EXCEEDED_REQUEUE
    left = deadline_left(status.rollout, plan.progress_deadline_seconds, now)
    if left is None:
        return requeue
    return min(requeue, left + 1.0) if requeue is not None else left + 1.0


def _adopted_volumes(status: Mapping[str, Any]) -> tuple[str, ...]:
    adopted = previous_status(status).adopted
    return adopted.volumes if adopted is not None else ()


def _validation_message(exc: ValidationError) -> str:
    problems = [f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors()[:5]]
    return "invalid spec: " + "; ".join(problems)
