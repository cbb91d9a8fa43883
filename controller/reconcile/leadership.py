"""Leader election: one replica of the controller acts, the others stand by, over a Lease.

`LeaderElector` drives the decision of `core/leader.py` against a `LeaseApi`, with client-go's timing:

- not leading, it tries to take the Lease every `retry_period`;
- leading, it renews every `retry_period`; when no renewal has succeeded for `renew_deadline` since the
  last one was sent, it stops leading, at once, even mid-request. `renew_deadline` < `lease_duration`, and
  another replica counts `lease_duration` from when it *saw* that last renewal (which cannot be before it
  was sent), so the old leader has stopped before anyone may take over;
- seeing the Lease name someone else while leading (it was taken), it stops leading at once;
- `release()` stops it, and a leader writes the Lease free so another replica takes over on its next try
  instead of after the lease duration.

Every failed call (an `ApiError`, unreachable included; a call outliving its budget; a lost write race) is
a failed attempt, retried; the first failure of a run of them is logged at WARNING, the rest at DEBUG, the
recovery at INFO. Leadership changes are logged when they happen.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from controller.core.leader import (
    Decision,
    ElectionTiming,
    Renew,
    Sighting,
    Take,
    Wait,
    decide,
    release,
    sight,
)
from controller.kube.client import ApiError
from controller.kube.lease import LeaseApi, LeaseConflict

log = logging.getLogger(__name__)

LeadershipCallback = Callable[[], Awaitable[None] | None]
"""Called on a leadership change; may be a plain function or a coroutine function (then awaited)."""

RELEASE_TRIES = 3
"""Reads and writes a release makes when other writes keep changing the Lease under it."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Written:
    """An attempt wrote the Lease: `decision` says what was written; `sent_at` (monotonic) is when the
    write was sent, the earliest moment anyone can have seen it."""

    decision: Take | Renew
    sent_at: float


_Outcome = _Written | Wait | LeaseConflict


class LeaderElector:
    """Competes for the Lease `namespace`/`name` as `identity`, which must be unique among the replicas
    (a pod name): a replica that finds its identity in the Lease renews it as its own.

    `clock` is monotonic seconds (it times deadlines and expiry) and must run at the rate of real time:
    a call in flight is cut off by an asyncio timeout computed from it. `wall_clock` stamps the Lease's
    acquireTime and renewTime, for people reading it; `sleep` is how `run()` waits between steps (tests
    pass ones driven by a fake clock). `step()` is one attempt, for tests to drive by hand; do not mix it
    with a `run()` in progress.

    `on_started_leading` and `on_stopped_leading` are called once per change, after `is_leader` has
    changed; coroutine functions are awaited before the elector goes on, so the stopped callback can
    finish stopping the work before `release()` hands the Lease over. They should return promptly: the
    elector does not renew while they run. An exception they raise is logged, not propagated.
    """

    def __init__(
        self,
        api: LeaseApi,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_started_leading: LeadershipCallback | None = None,
        on_stopped_leading: LeadershipCallback | None = None,
    ) -> None:
        if not identity:
            raise ValueError(
                "a leader-election identity must not be empty: empty means nobody holds the Lease"
            )
        self.timing = ElectionTiming(lease_duration, renew_deadline, retry_period)
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self._api = api
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading

        self._leading = asyncio.Event()
        self._not_leading = asyncio.Event()
        self._not_leading.set()
        self._sighting: Sighting | None = None
        self._renewed_at = 0.0
        """When (monotonic) the last successful write was sent; meaningful while leading."""
        self._failing = False
        self._waiting_on = ""
        self._stopped = False
        self._runner: asyncio.Task[None] | None = None

    # --- what callers see ---------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """Whether this replica may act as the leader now. It turns False at the renew deadline even when
        the step that reports the loss (and calls `on_stopped_leading`) is late, say behind a busy loop."""
        return self._leading.is_set() and self._clock() < self._deadline()

    async def until_leading(self) -> None:
        """Return once this replica leads (at once if it does)."""
        await self._leading.wait()

    async def until_not_leading(self) -> None:
        """Return once this replica does not lead (at once if it does not)."""
        await self._not_leading.wait()

    # --- driving it -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Acquire, then hold the Lease, until `release()`; then return. Failures are retried, never raised.

        The loop runs in a task of its own, which `release()` cancels (a call in flight included) without
        touching the caller's task. Cancelling `run()` stops leading (the callback runs) but leaves the
        Lease to expire; `release()` also hands it over.
        """
        if self._runner is not None:
            raise RuntimeError("this LeaderElector is already running")
        loop = asyncio.create_task(self._loop(), name=f"leader-election {self.namespace}/{self.name}")
        self._runner = loop
        try:
            await asyncio.wait([loop])
        except asyncio.CancelledError:
            loop.cancel()
            await asyncio.wait([loop])
            raise
        finally:
            self._runner = None
        if not loop.cancelled() and (error := loop.exception()) is not None:
            raise error

    async def _loop(self) -> None:
        try:
            while not self._stopped:
                delay = await self.step()
                await self._sleep(delay)
        finally:
            await self._lose("the elector stopped", level=logging.INFO)

    async def step(self) -> float:
        """One attempt to take or renew the Lease; returns the seconds to wait before the next one.

        A leader's attempt is cut off at its renew deadline, and the deadline passing ends leadership, so
        a leader always gets a step at its deadline. After `release()` a step does nothing.
        """
        if self._stopped:
            return self.timing.retry_period
        await self._lose_if_overdue(self._clock())
        try:
            outcome = await asyncio.wait_for(self._attempt(), self._attempt_budget())
        except (ApiError, TimeoutError) as exc:
            self._report_failure(exc)
        else:
            self._report_recovery()
            await self._apply(outcome)
        now = self._clock()
        await self._lose_if_overdue(now)
        if self._leading.is_set():
            return min(self.timing.retry_period, self._deadline() - now)
        return self.timing.retry_period

    async def release(self) -> None:
        """Stop for good: end `run()`, stop leading, and if this replica holds the Lease, write it free.

        The stopped callback has returned before the release is written, so the work has stopped before
        another replica can start it. A release that fails is logged; the Lease then simply expires.
        """
        self._stopped = True
        runner = self._runner
        if runner is not None and runner is not asyncio.current_task():
            runner.cancel()
            await asyncio.wait([runner])
        await self._lose("released", level=logging.INFO)
        seen = self._sighting.record if self._sighting is not None else None
        if seen is None or seen.holder != self.identity:
            return
        try:
            await asyncio.wait_for(self._write_release(), self.timing.renew_deadline)
        except (ApiError, TimeoutError) as exc:
            log.warning(
                "Lease %s/%s: could not release it (%s); another replica takes over when it expires",
                self.namespace,
                self.name,
                _describe(exc),
            )

    # --- one attempt --------------------------------------------------------------------------------

    async def _attempt(self) -> _Outcome:
        lease = await self._api.get_lease(self.namespace, self.name)
        # Seen once the read returned: the holder's write was sent before that, never after.
        now = self._clock()
        self._sighting = sight(self._sighting, lease.record if lease is not None else None, now)
        decision: Decision = decide(
            self._sighting,
            identity=self.identity,
            now=now,
            wall_now=self._wall_clock(),
            lease_duration=self.timing.lease_duration_seconds,
        )
        if isinstance(decision, Wait):
            return decision
        sent_at = self._clock()
        if lease is None:
            written = await self._api.create_lease(self.namespace, self.name, decision.record)
        else:
            written = await self._api.replace_lease(lease, decision.record)
        if isinstance(written, LeaseConflict):
            return written
        self._sighting = sight(self._sighting, written.record, self._clock())
        return _Written(decision, sent_at)

    def _attempt_budget(self) -> float:
        """How long this attempt may take: a leader's until its deadline; a candidate's the renew deadline,
        since a claim that took longer would be over as soon as it was won."""
        if self._leading.is_set():
            return max(0.0, self._deadline() - self._clock())
        return self.timing.renew_deadline

    async def _apply(self, outcome: _Outcome) -> None:
        if isinstance(outcome, LeaseConflict):
            log.debug(
                "Lease %s/%s: lost a write race (%s); reading again", self.namespace, self.name, outcome
            )
        elif isinstance(outcome, Wait):
            await self._lose(f"the Lease is held by {outcome.holder}", level=logging.WARNING)
            if outcome.holder != self._waiting_on:
                self._waiting_on = outcome.holder
                log.info(
                    "Lease %s/%s is held by %s; standing by (expires in %.1fs unless renewed)",
                    self.namespace,
                    self.name,
                    outcome.holder,
                    outcome.expires_in,
                )
        elif self._clock() >= outcome.sent_at + self.timing.renew_deadline:
            log.debug("Lease %s/%s: the write landed too late to count", self.namespace, self.name)
        else:
            self._waiting_on = ""
            self._renewed_at = outcome.sent_at
            if not self._leading.is_set():
                why = outcome.decision.why.value if isinstance(outcome.decision, Take) else "already ours"
                await self._become_leader(why)

    # --- transitions --------------------------------------------------------------------------------

    def _deadline(self) -> float:
        return self._renewed_at + self.timing.renew_deadline

    async def _lose_if_overdue(self, now: float) -> None:
        if self._leading.is_set() and now >= self._deadline():
            await self._lose(
                f"no renewal succeeded within {self.timing.renew_deadline:g}s", level=logging.WARNING
            )

    async def _become_leader(self, why: str) -> None:
        self._not_leading.clear()
        self._leading.set()
        log.info(
            "Lease %s/%s: %s is the leader (the Lease was %s)", self.namespace, self.name, self.identity, why
        )
        await self._notify(self._on_started, "on_started_leading")

    async def _lose(self, why: str, *, level: int) -> None:
        if not self._leading.is_set():
            return
        self._leading.clear()
        self._not_leading.set()
        log.log(level, "Lease %s/%s: %s stopped leading: %s", self.namespace, self.name, self.identity, why)
        await self._notify(self._on_stopped, "on_stopped_leading")

    async def _notify(self, callback: LeadershipCallback | None, what: str) -> None:
        if callback is None:
            return
        try:
            result = callback()
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("Lease %s/%s: %s failed", self.namespace, self.name, what)

    # --- releasing ----------------------------------------------------------------------------------

    async def _write_release(self) -> None:
        for _ in range(RELEASE_TRIES):
            lease = await self._api.get_lease(self.namespace, self.name)
            if lease is None or lease.record.holder != self.identity:
                return
            written = await self._api.replace_lease(lease, release(lease.record, self._wall_clock()))
            if not isinstance(written, LeaseConflict):
                self._sighting = sight(self._sighting, written.record, self._clock())
                log.info("Lease %s/%s: released by %s", self.namespace, self.name, self.identity)
                return
        log.warning(
            "Lease %s/%s: could not release it, other writes kept changing it; it expires on its own",
            self.namespace,
            self.name,
        )

    # --- logging failures ---------------------------------------------------------------------------

    def _report_failure(self, exc: ApiError | TimeoutError) -> None:
        if self._failing:
            log.debug("Lease %s/%s: attempt failed again: %s", self.namespace, self.name, _describe(exc))
            return
        self._failing = True
        log.warning(
            "Lease %s/%s: attempt failed (%s); retrying every %gs, quietly until one succeeds",
            self.namespace,
            self.name,
            _describe(exc),
            self.timing.retry_period,
        )

    def _report_recovery(self) -> None:
        if self._failing:
            self._failing = False
            log.info("Lease %s/%s: the API server answers again", self.namespace, self.name)


def _describe(exc: ApiError | TimeoutError) -> str:
    return str(exc) if isinstance(exc, ApiError) else "no answer in time"
