"""Carrying out the `decide` actions against the container runtime: the imperative steps, in order.

Each action ends with the container as the runtime now shows it. A failed step raises `StepFailed` with
the verdict of `controller.core.failures` (Stalled, or retried with backoff); an unexpected runtime
error is left to the reconciler, which judges it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import assert_never

from controller.api.workspace import PullPolicy
from controller.core import labels
from controller.core.adoption import volume_verdict
from controller.core.causes import Cause, Reason
from controller.core.decide import (
    PROGRESS_REQUEUE,
    Action,
    Adopt,
    Create,
    Keep,
    Replace,
    Stall,
    Start,
    Stop,
    Unpause,
    name_conflict,
)
from controller.core.failures import Failure, Step, pull_failure, runtime_failure
from controller.core.identity import WorkspaceRef
from controller.core.images import image_never_pulled_message, pulls_first, should_pull
from controller.core.isolation import (
    EGRESS_ALIAS,
    NO_FILES,
    GatewayPlan,
    gateway_name,
    gateway_step,
    internal_network_name,
    is_gateway,
)
from controller.core.plan import ContainerPlan
from controller.core.start_first import (
    DRAIN_SECONDS,
    RETIRED_STOP_GRACE,
    Abandon,
    AwaitNext,
    HoldFailed,
    Promote,
    Retire,
    RolloutAction,
    StartNext,
    next_name,
    retired_name,
)
from controller.port.errors import Conflict, ContainerRuntimeError, ImageNotFound, NotFound
from controller.port.runtime import ContainerRuntime
from controller.port.values import ContainerSpec, ObservedContainer
from controller.reconcile.observer import Observer
from controller.reconcile.recent_pulls import RecentPulls

log = logging.getLogger(__name__)

ADOPT_REQUEUE = 1.0
"""Look again this soon when a create found our own container already there (the list lagged)."""
PULL_REPORTED_AFTER = 2.0
"""A pull still running after this many seconds is reported as Reconciling/Pulling while it goes on."""

ProgressReporter = Callable[[Cause], Awaitable[None]]


class StepFailed(Exception):
    def __init__(self, failure: Failure, *, unstarted: str | None = None) -> None:
        super().__init__(failure.cause.message)
        self.failure = failure
        self.unstarted = unstarted
        """The id of the container that failed to start, when that was the step that failed."""


@dataclass
class Journal:
    """What a pass did, filled in as it goes."""

    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    progressing: Cause | None = None
    requeue_after: float | None = None
    session_reset: str | None = None
    """The session reset token this pass acted on (the session volume was emptied)."""
    adopted_container: str | None = None
    """The Go provisioner's container this pass took over (its name and ID)."""
    adopted_volumes: list[str] = field(default_factory=list)
    """Volumes this pass used that were not made for this Workspace (spec.adopt)."""
    rollout_failed: Cause | None = None
    """A StartFirst replacement failed and was removed (or failed before and is held): Synced=False."""
    promoted: bool = False
    """A StartFirst replacement took the name this pass (the old container drains)."""

    def note(self, reason: str, message: str) -> None:
        self.events.append(("Normal", reason, message))


class ActionRunner:
    def __init__(
        self,
        runtime: ContainerRuntime,
        observer: Observer,
        *,
        instance: str,
        report_progress: ProgressReporter,
        post_soon: Callable[[WorkspaceRef, str, str, str], None],
        host: str | None = None,
        adopted: Collection[str] = (),
        exists: Callable[[str], bool] = lambda _: True,
        pulls: RecentPulls | None = None,
        pull_window: float = 0.0,
    ) -> None:
        self._pulls = pulls or RecentPulls()
        self._removed: set[str] = set()  # containers this runner removed (not strays to remove again)
        self._pull_window = pull_window
        self._host = host
        self._adopted = adopted
        self._exists = exists
        self._runtime = runtime
        self._observer = observer
        self._instance = instance
        self._report_progress = report_progress
        self._post_soon = post_soon

    async def run(
        self,
        action: Action,
        plan: ContainerPlan | None,
        container: ObservedContainer | None,
        journal: Journal,
    ) -> ObservedContainer | None:
        """Carry out `action`; return the container afterwards (None when there is none, or not ours)."""
        match action:
            case Keep() | Stall():
                return container
            case Stop(container_id=container_id, grace=grace, because=because):
                # Stopped, not removed: `unless-stopped` keeps it down across daemon restarts, and
                # resuming starts the same container on the same volumes.
                name = container.name if container else container_id
                await self._touching(name, self._runtime.stop_container(container_id, grace))
                if because is None:
                    journal.note("Suspended", f"stopped container {name}; it and its volumes are kept")
                else:
                    journal.note(
                        "Stopped", f"stopped container {name} ({because.reason}); it and its volumes are kept"
                    )
                return await self._observer.observe(name)
        assert plan is not None  # every other action realises a plan
        match action:
            case Replace(container_id=container_id, why=why, reset_session=reset_session, pull=pull):
                # The new image first: a slow or failing pull must not leave the workspace without a
                # container.
                rolling = Cause(Reason.ROLLING_OUT, f"replacing container {plan.name} for {why}")
                journal.progressing = rolling
                await self._report_progress(rolling)
                await self._ensure_image(plan, journal, always=pull)
                await self._touching(plan.name, self._runtime.remove_container(container_id))
                self._removed.add(container_id)
                journal.note("Recreating", f"removed container {plan.name} for {why}")
                return await self._create(plan, journal, reset_session=reset_session, image_ready=True)
            case Create(reset_session=reset_session):
                return await self._create(plan, journal, reset_session=reset_session)
            case Adopt(container_id=container_id, container_name=name):
                # As a replace: the image first, then the old container goes (its volumes stay) and ours
                # is created on the same volumes.
                await self._ensure_image(plan, journal)
                await self._touching(plan.name, self._runtime.remove_container(container_id))
                self._removed.add(container_id)
                journal.adopted_container = f"{name} ({container_id[:12]})"
                journal.note(
                    "Adopted",
                    f"took over container {name} of the Go provisioner: removed it, its volumes are kept",
                )
                return await self._create(plan, journal, reset_session=False, image_ready=True)
            case Unpause(container_id=container_id):
                await self._touching(plan.name, self._runtime.unpause_container(container_id))
                journal.note("Unpaused", f"unpaused container {plan.name}")
                return await self._observer.observe(plan.name)
            case Start(container_id=container_id, write_files=write_files, restart=restart):
                if restart:
                    # Exited under unless-stopped: stopped by hand, or by a daemon that is going down (it
                    # stops every container, and starts them again itself when it is back).
                    await self._runtime.confirm_accepting()
                if write_files:
                    await self._runtime.write_files(container_id, plan.files)
                await self._start(plan, container_id, journal, "Restarted" if restart else "Started")
                return await self._observer.observe(plan.name)
            case StartNext() | AwaitNext() | Promote() | Abandon() | Retire() | HoldFailed():
                return await self._roll(action, plan, container, journal)
            case _:
                assert_never(action)

    async def _roll(
        self, action: RolloutAction, plan: ContainerPlan, serving: ObservedContainer | None, journal: Journal
    ) -> ObservedContainer | None:
        """A StartFirst step (`core.start_first`); returns the container serving under the name after it."""
        upcoming = next_name(plan.name)
        match action:
            case StartNext(pull=pull):
                rolling = Cause(
                    Reason.ROLLING_OUT, f"starting {upcoming} beside {plan.name}; it takes over once Ready"
                )
                journal.progressing = rolling
                await self._report_progress(rolling)
                await self._ensure_image(plan, journal, always=pull)
                await self._start_next(plan, upcoming, journal)
                journal.requeue_after = PROGRESS_REQUEUE
            case AwaitNext(next_name=name):
                journal.progressing = Cause(
                    Reason.ROLLING_OUT, f"waiting for {name} to become Ready; {plan.name} serves meanwhile"
                )
                journal.requeue_after = PROGRESS_REQUEUE
            case Promote(old_id=old_id, next_id=next_id):
                if old_id is not None:
                    await self._touching(
                        plan.name, self._runtime.rename_container(old_id, retired_name(plan.name))
                    )
                    self._observer.touched(retired_name(plan.name))
                await self._touching(upcoming, self._runtime.rename_container(next_id, plan.name))
                self._observer.touched(plan.name)
                journal.promoted = True
                journal.note(
                    "RolledOut",
                    f"{plan.name} is now the new container; the previous one goes in {DRAIN_SECONDS:.0f}s",
                )
                journal.requeue_after = DRAIN_SECONDS + 0.5
            case Abandon(next_id=next_id, cause=cause):
                await self._touching(upcoming, self._runtime.remove_container(next_id))
                if cause is not None:
                    # Reported as Synced=False, whose transition posts the one Warning.
                    journal.rollout_failed = cause
            case Retire(container_id=container_id):
                retired = retired_name(plan.name)
                with contextlib.suppress(ContainerRuntimeError):
                    if plan.container.network:
                        # Off the network first: its alias stops resolving before the agent stops, so
                        # no client of the name is sent to an address where nothing listens any more.
                        await self._runtime.disconnect_network(container_id, plan.container.network)
                    await self._runtime.stop_container(container_id, RETIRED_STOP_GRACE)
                await self._touching(retired, self._runtime.remove_container(container_id))
                journal.note("Retired", f"removed the previous container {retired}")
            case HoldFailed(cause=cause):
                journal.rollout_failed = cause
            case _:
                assert_never(action)
        return await self._observer.observe(plan.name) if serving is not None or journal.promoted else serving

    def _on_host(self, spec: ContainerSpec) -> ContainerSpec:
        """Where it was placed, on the container itself: what an admin filters on, and what survives a
        lost status. Not part of the config hash: a Workspace never moves."""
        if self._host is None:
            return spec
        return dataclasses.replace(spec, labels={**spec.labels, labels.HOST_LABEL: self._host})

    async def _start_next(self, plan: ContainerPlan, name: str, journal: Journal) -> None:
        """The replacement beside the serving container: on its volumes, its own loopback port, and on the
        network only under its own name (no client of the Workspace's name reaches it before the switch)."""
        spec = self._on_host(dataclasses.replace(plan.container, name=name, aliases=()))
        network_id = await self._ensure_network(spec)
        try:
            with self._observer.changing(name):
                container_id = await self._runtime.create_container(spec, plan.files, network_id=network_id)
        except Conflict:
            journal.requeue_after = ADOPT_REQUEUE  # an earlier pass made it: the next one sees it
            return
        except ContainerRuntimeError as exc:
            raise StepFailed(runtime_failure(exc, Step.CREATE, container=name, image=plan.image)) from exc
        try:
            await self._touching(name, self._runtime.start_container(container_id))
        except ContainerRuntimeError as exc:
            raise StepFailed(
                runtime_failure(exc, Step.START, container=name), unstarted=container_id
            ) from exc
        journal.note("RollingOut", f"started {name} from {plan.image} beside {plan.name}")

    async def _create(
        self, plan: ContainerPlan, journal: Journal, *, reset_session: bool, image_ready: bool = False
    ) -> ObservedContainer | None:
        if reset_session and plan.session_volume:
            await self._runtime.remove_volume(plan.session_volume)
            journal.session_reset = plan.session_reset_token
            journal.note("SessionReset", f"emptied session volume {plan.session_volume}")
        await self._remove_strays(plan)
        if journal.progressing is None or journal.progressing.reason != Reason.ROLLING_OUT:
            journal.progressing = Cause(Reason.CREATING, f"creating container {plan.name}")
        spec = self._on_host(plan.container)
        network_id = await self._ensure_network(spec)
        adopting: list[str] = []
        for volume in plan.volumes:
            found = await self._runtime.ensure_volume(volume.name, volume.labels)
            verdict = volume_verdict(
                volume.name,
                found.labels,
                instance=self._instance,
                workspace=plan.workspace,
                adopt=plan.adopt,
                adopted=self._adopted,
                platform_named=bool(plan.workspace.platform_id),
                exists=self._exists,
            )
            if isinstance(verdict, Cause):
                raise StepFailed(Failure(await self._holder_conflict(plan) or verdict, stalled=True))
            if verdict == "adopt":
                adopting.append(volume.name)
        policy = plan.image_pull_policy
        shared_pull = False
        if not image_ready and pulls_first(policy, plan.image):
            # Always means a pull of its own, as for the kubelet; a moving tag (no policy) may use one
            # made for another Workspace within the pull window.
            await self._pull_recent(plan, journal, policy, own=policy == "Always")
            image_ready, shared_pull = True, policy != "Always"
        elif not image_ready and self._pulls.missing(plan.image):
            # An earlier create found it missing: fetched (or reported) first, not another create that
            # cannot succeed.
            await self._fetch_missing(plan, journal)
            image_ready = True
        try:
            # The daemon's `create` event may come before the answer (see `Observer.changing`).
            with self._observer.changing(plan.name):
                container_id = await self._create_container(
                    plan, spec, journal, network_id, image_ready=image_ready, shared_pull=shared_pull
                )
        except Conflict:
            # The name is taken: ours (an earlier pass the list did not show yet) is adopted on the next
            # pass rather than duplicated; anyone else's is a conflict the user must resolve.
            self._observer.touched(plan.name)
            existing = await self._observer.observe(plan.name)
            if existing is not None and not labels.owns(existing.labels, self._instance, plan.workspace):
                legacy = labels.made_by_go_provisioner(existing.labels)
                raise StepFailed(Failure(name_conflict(plan.name, legacy=legacy), stalled=True)) from None
            journal.requeue_after = ADOPT_REQUEUE
            return existing
        except ContainerRuntimeError as exc:
            failure = runtime_failure(exc, Step.CREATE, container=plan.name, image=plan.image)
            raise StepFailed(failure) from exc
        # Taken over once our container mounts them (not when another's create won the name).
        journal.adopted_volumes.extend(adopting)
        journal.note("Created", f"created container {plan.name} from {plan.image}")
        if plan.skipped_env:
            self._post_soon(
                plan.workspace,
                "Warning",
                "InvalidEnvFromKeys",
                "envFrom keys left out of the environment: " + "; ".join(plan.skipped_env),
            )
        await self._start(plan, container_id, journal, "Started")
        return await self._observer.observe(plan.name)

    async def _create_container(
        self,
        plan: ContainerPlan,
        spec: ContainerSpec,
        journal: Journal,
        network_id: str | None,
        *,
        image_ready: bool,
        shared_pull: bool,
    ) -> str:
        """The create, and once more after what its refusal asks for: the image pulled, the network made."""
        # Config files and the token are in /configs before the agent's first instruction runs.
        try:
            return await self._runtime.create_container(spec, plan.files, network_id=network_id)
        except ImageNotFound:
            # Created first, pulled only when missing: an image that is there costs no inspect. One
            # pulled a moment ago for another Workspace and removed since (rmi, image GC): pulled again.
            if image_ready and not shared_pull:
                raise
            if shared_pull:
                await self._pull_recent(plan, journal, plan.image_pull_policy, own=True)
            else:
                await self._fetch_missing(plan, journal)
        except NotFound as exc:
            if exc.resource != "network" or not spec.network:
                raise
            # The network was removed by hand since it was made: made again, the create tried again.
            network_id = await self._ensure_network(spec)
        return await self._runtime.create_container(spec, plan.files, network_id=network_id)

    async def _start(self, plan: ContainerPlan, container_id: str, journal: Journal, reason: str) -> None:
        try:
            await self._touching(plan.name, self._runtime.start_container(container_id))
        except ContainerRuntimeError as exc:
            if isinstance(exc, NotFound) and exc.resource == "network":
                # Made on a network removed since: it can never start. The next pass makes a new
                # container (same volumes) on the network made again.
                await self._touching(plan.name, self._runtime.remove_container(container_id))
                raise StepFailed(runtime_failure(exc, Step.START, container=plan.name)) from exc
            # Reported as Synced=False (one Warning when it starts failing, not one per retry).
            failure = runtime_failure(exc, Step.START, container=plan.name)
            raise StepFailed(failure, unstarted=container_id) from exc
        journal.note(reason, f"started container {plan.name}")

    async def _fetch_missing(self, plan: ContainerPlan, journal: Journal) -> None:
        """An image the create found missing on the host: pulled, or reported missing. Remembered as
        missing until it is found, so that the passes of a Workspace stalled on it try no create."""
        self._pulls.found_missing(plan.image)
        await self._ensure_image(plan, journal)
        self._pulls.found(plan.image)

    async def _ensure_image(self, plan: ContainerPlan, journal: Journal, *, always: bool = False) -> None:
        """Pull as the pull policy says (`always`: a pull of its own whatever it says, and a failure is not
        tolerated: a new image of the tag is the reason)."""
        if always:
            await self._pull_recent(plan, journal, "Always", own=True)
            return
        policy = plan.image_pull_policy
        if pulls_first(policy, plan.image):
            await self._pull_recent(plan, journal, policy, own=policy == "Always")
            return
        local = await self._runtime.inspect_image(plan.image)
        if local is not None:
            return
        if not should_pull(policy, plan.image, present_locally=False):
            cause = Cause(Reason.IMAGE_NOT_FOUND, image_never_pulled_message(plan.image))
            raise StepFailed(Failure(cause, stalled=True))
        await self._pull_recent(plan, journal, policy, present=False)

    async def _pull_recent(
        self,
        plan: ContainerPlan,
        journal: Journal,
        policy: PullPolicy | None,
        *,
        own: bool = False,
        present: bool | None = None,
    ) -> None:
        """Pull, or use a pull of the same image on this host finished within the pull window or under way
        (`own`: a pull of its own). `present`: whether the image is on the host, if known; a failed pull
        asks, to judge whether the cached copy may serve (`core.failures.pull_failure`)."""
        try:
            pulled = await self._pulls.pull(
                plan.image,
                plan.container.platform,
                plan.pull_credentials,
                lambda: self._pull(plan),
                window=0.0 if own else self._pull_window,
            )
        except ContainerRuntimeError as exc:
            if present is None:
                present = await self._runtime.inspect_image(plan.image) is not None
            failure = pull_failure(
                exc,
                container=plan.name,
                image=plan.image,
                policy=policy,
                present=present,
                has_credentials=plan.pull_credentials is not None,
            )
            if failure is None:
                log.warning("re-pull of %s failed (%s); using the local copy", plan.image, exc)
                return
            # No event here: becoming Stalled posts one Warning with this message, once, rather than
            # one per resync while the image stays missing.
            raise StepFailed(failure) from exc
        if not pulled.shared:
            journal.note("Pulled", f"pulled image {plan.image} ({pulled.image_id[:19]})")

    async def _pull(self, plan: ContainerPlan) -> str:
        """Pull, and report Reconciling/Pulling if it takes longer than a moment."""
        pull = asyncio.ensure_future(
            self._runtime.pull_image(plan.image, plan.container.platform, plan.pull_credentials)
        )
        try:
            done, _ = await asyncio.wait({pull}, timeout=PULL_REPORTED_AFTER)
            if not done:
                await self._report_progress(Cause(Reason.PULLING, f"pulling image {plan.image}"))
            return await pull
        finally:
            pull.cancel()

    async def _holder_conflict(self, plan: ContainerPlan) -> Cause | None:
        """NameConflict when a container that is not ours holds the name: that is the conflict to
        report (and, made by the Go provisioner, to adopt), before any about its volumes."""
        self._observer.touched(plan.name)
        existing = await self._observer.observe(plan.name)
        if existing is None or labels.owns(existing.labels, self._instance, plan.workspace):
            return None
        return name_conflict(plan.name, legacy=labels.made_by_go_provisioner(existing.labels))

    async def _remove_strays(self, plan: ContainerPlan) -> None:
        """Remove this Workspace's containers under another name (renamed by hand): never two agents.
        Found in the resync's list of everyone's containers, not by a list of its own."""
        workspace = plan.workspace
        ours = (plan.name, next_name(plan.name), retired_name(plan.name), gateway_name(plan.name))
        for stray in await self._observer.owned_by(workspace, ours):
            if stray.id in self._removed or (stray.name == ours[-1] and is_gateway(stray.labels)):
                continue  # removed already; or the gateway, which is the gateway step's to keep or remove
            # Under its own name too: a create is decided once that name holds no container, so the list
            # (taken before) shows one renamed since, or gone; by ID, it goes (or is already gone).
            await self._runtime.remove_container(stray.id)
            self._observer.touched(stray.name)
            if stray.name != plan.name:
                self._post_soon(workspace, "Normal", "RemovedStray", f"removed container {stray.name}")

    async def _ensure_network(self, spec: ContainerSpec) -> str | None:
        """The ID of the network `spec` joins (made if missing); an isolated agent's is internal."""
        if not spec.network:
            return None
        if not spec.network_internal:
            return await self._runtime.ensure_network(spec.network)
        owner = labels.workspace_labels_of(spec.labels)
        return await self._runtime.ensure_network(spec.network, internal=True, labels=owner)

    async def gateway(
        self,
        workspace: WorkspaceRef,
        agent: str,
        gateway: GatewayPlan | None,
        journal: Journal,
        *,
        active: bool,
        isolated: bool,
        agent_current: bool = True,
    ) -> int | None:
        """The gateway of isolated agent `agent` (`core.isolation`): made from `gateway`, mended, or
        removed when the agent is not `active` (suspended, denied) or no longer `isolated` (then its
        internal network goes too). Returns the host port the gateway publishes."""
        name = gateway_name(agent)
        if gateway is None and not self._observer.listed(name):
            return None  # no gateway wanted, and none left from when it was: no call at all
        found = await self._observer.observe(name)
        if found is not None and not labels.owns(found.labels, self._instance, workspace):
            if gateway is not None and active:
                raise StepFailed(Failure(name_conflict(name, legacy=False), stalled=True))
            return None
        step = gateway_step(
            gateway,
            found,
            active=active,
            config_hash=labels.read_config_hash(found.labels) if found is not None else None,
            agent_current=agent_current,
        )
        if step in ("remove", "replace") and found is not None:
            try:
                await self._touching(name, self._runtime.remove_container(found.id))
            except ContainerRuntimeError as exc:
                raise StepFailed(runtime_failure(exc, Step.OTHER, container=name)) from exc
            self._removed.add(found.id)
        if step == "remove" and not isolated:
            # No longer isolated: the agent (replaced in this pass) has left its internal network.
            with contextlib.suppress(ContainerRuntimeError):
                await self._runtime.remove_network(internal_network_name(agent))
            journal.note("GatewayRemoved", f"removed gateway {name}: the agent is no longer isolated")
        if step in ("remove", "keep") or gateway is None:
            return found.host_port if step == "keep" and found is not None and found.running else None
        try:
            if step == "start" and found is not None:
                await self._touching(name, self._runtime.start_container(found.id))
            else:
                await self._create_gateway(gateway)
                journal.note("GatewayCreated", f"created gateway {name} for the isolated agent {agent}")
        except Conflict:
            # The name is taken since the list: ours (an earlier pass) is seen by the next pass; anyone
            # else's is a conflict to resolve.
            self._observer.touched(name)
            holder = await self._observer.observe(name)
            if holder is not None and not labels.owns(holder.labels, self._instance, workspace):
                raise StepFailed(Failure(name_conflict(name, legacy=False), stalled=True)) from None
            journal.requeue_after = ADOPT_REQUEUE
            return None
        except ContainerRuntimeError as exc:
            failure = runtime_failure(exc, Step.CREATE, container=name, image=gateway.container.image)
            raise StepFailed(failure) from exc
        after = await self._observer.observe(name)
        return after.host_port if after is not None and after.running else None

    async def _create_gateway(self, gateway: GatewayPlan) -> None:
        """Made on the workspace network, joined to the agent's internal one as `egress`, started. Its
        image is pulled when the host lacks it."""
        spec = self._on_host(gateway.container)
        shared = await self._ensure_network(spec)
        owner = labels.workspace_labels_of(spec.labels)
        internal = await self._runtime.ensure_network(gateway.internal_network, internal=True, labels=owner)
        with self._observer.changing(spec.name):
            try:
                container_id = await self._runtime.create_container(spec, NO_FILES, network_id=shared)
            except ImageNotFound:
                await self._runtime.pull_image(spec.image)
                container_id = await self._runtime.create_container(spec, NO_FILES, network_id=shared)
            await self._runtime.connect_network(container_id, internal, (EGRESS_ALIAS,))
            await self._runtime.start_container(container_id)

    async def _touching(self, name: str, call: Awaitable[None]) -> None:
        """Run a call that changes the container: the observer's list no longer speaks for it, even if
        the call failed half way, and the daemon's events of it are its echo."""
        with self._observer.changing(name):
            await call
