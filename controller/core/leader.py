"""Leader election on a Lease, the decision alone: what one replica should do with the record it just read.

The record is what client-go's leader election keeps in a `coordination.k8s.io/v1` Lease's spec: the
holder's identity, how long its claim lasts, when it was acquired and last renewed, and how many times the
holder changed. Every replica reads it, decides here, and writes back with optimistic concurrency (the
write carries the resourceVersion it read, so of two replicas deciding on the same record one fails with
409 Conflict and reads again). The rules are client-go's:

- no Lease at all, or a holder of "" (a holder released it on shutdown): take it;
- a Lease naming me: renew it (keeping its acquireTime and transition count);
- a Lease naming someone else: wait until it expires, then take it.

Expiry is not judged by the holder's renewTime, which was stamped by the holder's wall clock: two machines'
clocks may disagree by more than a lease lasts. Like client-go, a replica remembers when it *observed* the
record change (`Sighting`), on its own monotonic clock, and counts the record's leaseDurationSeconds from
there. The holder stamps renewTime only for people reading the Lease; a record that stops changing expires
one lease duration after the last change this replica saw, whatever the remote clock said.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True)
class LeaseRecord:
    """A Lease's spec as leader election reads and writes it (client-go's LeaderElectionRecord).

    `holder` is "" when nobody holds it (released, or a null holderIdentity). Times are the writer's wall
    clock (MicroTime on the wire) and are informative only: expiry is judged on the reader's clock.
    """

    holder: str = ""
    lease_duration_seconds: int | None = None
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    lease_transitions: int = 0


@dataclass(frozen=True)
class ElectionTiming:
    """How long a claim lasts, how soon a leader gives up when it cannot renew, how often replicas try.

    `renew_deadline` < `lease_duration` is what makes the election safe: a leader that cannot renew stops
    acting `renew_deadline` after its last successful renewal, before any other replica may consider the
    Lease expired (`lease_duration` after it saw that renewal). `retry_period` < `renew_deadline` leaves a
    leader more than one try before it gives up. The Lease stores whole seconds, so `lease_duration` is one.
    """

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lease_duration) and self.lease_duration >= 1):
            raise ValueError(f"lease_duration must be at least 1 s, not {self.lease_duration}")
        if self.lease_duration != int(self.lease_duration):
            raise ValueError(
                f"lease_duration must be whole seconds (a Lease holds an integer), not {self.lease_duration}"
            )
        if not 0 < self.renew_deadline < self.lease_duration:
            raise ValueError(
                f"renew_deadline ({self.renew_deadline}) must be positive and shorter than lease_duration "
                f"({self.lease_duration}): a leader must stop before others may take over"
            )
        if not 0 < self.retry_period < self.renew_deadline:
            raise ValueError(
                f"retry_period ({self.retry_period}) must be positive and shorter than renew_deadline "
                f"({self.renew_deadline})"
            )

    @property
    def lease_duration_seconds(self) -> int:
        return int(self.lease_duration)


@dataclass(frozen=True)
class Sighting:
    """The record as this replica last read it (None: no Lease) and since when, on its monotonic clock,
    it has looked like that. `since` only moves when the record changes: it is when the holder was last
    seen alive."""

    record: LeaseRecord | None
    since: float


def sight(previous: Sighting | None, record: LeaseRecord | None, now: float) -> Sighting:
    """The sighting after reading `record` at `now`: the previous one if nothing changed, else a new one."""
    if previous is not None and previous.record == record:
        return previous
    return Sighting(record, now)


class TakeWhy(StrEnum):
    ABSENT = "absent"
    RELEASED = "released"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Take:
    """Become the holder: write `record` (create the Lease when `why` is ABSENT, else replace it)."""

    record: LeaseRecord
    why: TakeWhy


@dataclass(frozen=True)
class Renew:
    """Stay the holder: write `record`, a fresh renewTime on the same claim."""

    record: LeaseRecord


@dataclass(frozen=True)
class Wait:
    """Someone else holds an unexpired Lease; by this replica's observation it expires in `expires_in` s."""

    holder: str
    expires_in: float


Decision = Take | Renew | Wait


def decide(
    sighting: Sighting, *, identity: str, now: float, wall_now: datetime, lease_duration: int
) -> Decision:
    """What the replica `identity` does with the record it sighted, at `now` (monotonic seconds).

    `wall_now` stamps the times written; `lease_duration` (whole seconds) is the claim this replica
    writes, and the one it assumes for a record that states none.
    """
    record = sighting.record
    if record is None:
        return Take(_claim(identity, wall_now, lease_duration, transitions=0), TakeWhy.ABSENT)
    if record.holder == identity:
        renewed = replace(
            record,
            lease_duration_seconds=lease_duration,
            acquire_time=record.acquire_time or wall_now,
            renew_time=wall_now,
        )
        return Renew(renewed)
    taken = _claim(identity, wall_now, lease_duration, transitions=record.lease_transitions + 1)
    if not record.holder:
        return Take(taken, TakeWhy.RELEASED)
    expires_in = expires_at(sighting, lease_duration) - now
    if expires_in < 0:
        return Take(taken, TakeWhy.EXPIRED)
    return Wait(record.holder, expires_in)


def expires_at(sighting: Sighting, default_duration: int) -> float:
    """When (monotonic) the sighted claim lapses: its leaseDurationSeconds after the record last changed.

    It has lapsed once `now` is strictly past this. A record without a duration is given `default_duration`.
    """
    record = sighting.record
    declared = record.lease_duration_seconds if record is not None else None
    return sighting.since + (declared if declared is not None else default_duration)


def release(record: LeaseRecord, wall_now: datetime) -> LeaseRecord:
    """The record a holder writes when it steps down, as client-go's ReleaseOnCancel does: no holder, a
    one-second duration, the transition count unchanged (the next taker increments it)."""
    return LeaseRecord(
        holder="",
        lease_duration_seconds=1,
        acquire_time=wall_now,
        renew_time=wall_now,
        lease_transitions=record.lease_transitions,
    )


def _claim(identity: str, wall_now: datetime, lease_duration: int, *, transitions: int) -> LeaseRecord:
    return LeaseRecord(
        holder=identity,
        lease_duration_seconds=lease_duration,
        acquire_time=wall_now,
        renew_time=wall_now,
        lease_transitions=transitions,
    )
