"""The leader-election decision: take, renew or wait, and the record written, as tables.

Times: `now` and a sighting's `since` are the deciding replica's monotonic seconds; the records' times are
writers' wall clocks, which the decision never compares with anything (a skewed remote clock cannot make
a live holder look expired, nor a dead one look alive).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.core.leader import (
    ElectionTiming,
    LeaseRecord,
    Renew,
    Sighting,
    Take,
    TakeWhy,
    Wait,
    decide,
    expires_at,
    release,
    sight,
)

ME, OTHER = "replica-a", "replica-b"
DURATION = 15
WALL = datetime(2026, 11, 30, 20, 1, 55, 123456, tzinfo=UTC)
EARLIER = WALL - timedelta(minutes=5)
NOW = 1000.0


def held(holder: str = OTHER, *, duration: int | None = DURATION, transitions: int = 2) -> LeaseRecord:
    return LeaseRecord(
        holder=holder,
        lease_duration_seconds=duration,
        acquire_time=EARLIER,
        renew_time=EARLIER + timedelta(seconds=30),
        lease_transitions=transitions,
    )


def decide_at(record: LeaseRecord | None, *, seen_since: float = NOW, now: float = NOW) -> object:
    return decide(Sighting(record, seen_since), identity=ME, now=now, wall_now=WALL, lease_duration=DURATION)


# --- take, renew or wait --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "seen_since", "expected"),
    [
        pytest.param(
            None,
            NOW,
            Take(LeaseRecord(ME, DURATION, WALL, WALL, 0), TakeWhy.ABSENT),
            id="no-lease-is-created-with-no-transitions",
        ),
        pytest.param(
            held(""),
            NOW,
            Take(LeaseRecord(ME, DURATION, WALL, WALL, 3), TakeWhy.RELEASED),
            id="released-is-taken-at-once-and-counts-a-transition",
        ),
        pytest.param(
            held("", duration=1),
            NOW,
            Take(LeaseRecord(ME, DURATION, WALL, WALL, 3), TakeWhy.RELEASED),
            id="released-as-client-go-writes-it",
        ),
        pytest.param(
            held(ME),
            NOW - 3600,
            Renew(LeaseRecord(ME, DURATION, EARLIER, WALL, 2)),
            id="mine-is-renewed-keeping-acquire-time-and-transitions-even-if-stale",
        ),
        pytest.param(
            LeaseRecord(ME, None, None, None, 0),
            NOW,
            Renew(LeaseRecord(ME, DURATION, WALL, WALL, 0)),
            id="mine-without-times-gets-them",
        ),
        pytest.param(
            held(ME, duration=60),
            NOW,
            Renew(LeaseRecord(ME, DURATION, EARLIER, WALL, 2)),
            id="mine-is-renewed-with-my-duration",
        ),
        pytest.param(
            held(), NOW, Wait(OTHER, DURATION), id="theirs-just-seen-changing-waits-a-whole-duration"
        ),
        pytest.param(held(), NOW - 10, Wait(OTHER, 5), id="theirs-unchanged-for-10s-has-5s-left"),
        pytest.param(held(), NOW - DURATION, Wait(OTHER, 0), id="theirs-at-exactly-the-duration-still-holds"),
        pytest.param(
            held(),
            NOW - DURATION - 0.001,
            Take(LeaseRecord(ME, DURATION, WALL, WALL, 3), TakeWhy.EXPIRED),
            id="theirs-unchanged-past-the-duration-is-taken",
        ),
        pytest.param(held(duration=60), NOW - 30, Wait(OTHER, 30), id="theirs-declares-its-own-duration"),
        pytest.param(held(duration=None), NOW - 10, Wait(OTHER, 5), id="theirs-without-duration-gets-mine"),
    ],
)
def test_decision(record: LeaseRecord | None, seen_since: float, expected: object) -> None:
    assert decide_at(record, seen_since=seen_since) == expected


# --- expiry is timed from the observation, not the remote clock -------------------------------------


@pytest.mark.parametrize(
    ("remote_skew", "seen_since", "expected"),
    [
        pytest.param(timedelta(hours=-1), NOW, Wait, id="renewTime-an-hour-old-but-just-seen-changing-holds"),
        pytest.param(timedelta(hours=1), NOW - 16, Take, id="renewTime-an-hour-ahead-but-unchanged-expires"),
        pytest.param(timedelta(0), NOW - 16, Take, id="honest-clock-unchanged-expires"),
        pytest.param(timedelta(days=-365), NOW - 14, Wait, id="a-year-behind-and-seen-14s-ago-holds"),
    ],
)
def test_expiry_ignores_the_remote_renew_time(
    remote_skew: timedelta, seen_since: float, expected: type
) -> None:
    record = LeaseRecord(OTHER, DURATION, WALL + remote_skew, WALL + remote_skew, 4)

    assert isinstance(decide_at(record, seen_since=seen_since), expected)


def test_a_replica_first_seeing_a_lease_counts_the_whole_duration_from_then() -> None:
    """However long ago renewTime says the holder renewed, a newcomer has seen no change yet: the holder
    may be alive, so it waits a full duration."""
    first_look = sight(None, held(), NOW)

    assert first_look.since == NOW
    assert expires_at(first_look, DURATION) == NOW + DURATION


@pytest.mark.parametrize(
    ("before", "after", "moves"),
    [
        pytest.param(held(), held(), False, id="same-record-keeps-the-time"),
        pytest.param(held(), LeaseRecord(OTHER, DURATION, EARLIER, WALL, 2), True, id="renewed"),
        pytest.param(held(), held(ME), True, id="new-holder"),
        pytest.param(held(), held(transitions=3), True, id="transitions-changed"),
        pytest.param(held(), held(duration=30), True, id="duration-changed"),
        pytest.param(held(), None, True, id="deleted"),
        pytest.param(None, None, False, id="still-absent"),
        pytest.param(None, held(), True, id="created"),
    ],
)
def test_sighting_moves_only_when_the_record_changes(
    before: LeaseRecord | None, after: LeaseRecord | None, moves: bool
) -> None:
    previous = Sighting(before, NOW - 7)

    assert sight(previous, after, NOW) == (Sighting(after, NOW) if moves else previous)


def test_a_renewal_seen_in_time_keeps_the_holder_alive_forever() -> None:
    sighting: Sighting | None = None
    for beat in range(100):
        now = NOW + beat * 10  # renewed every 10 s, a 15 s lease
        renewed = LeaseRecord(OTHER, DURATION, EARLIER, EARLIER + timedelta(seconds=beat), 1)
        sighting = sight(sighting, renewed, now)
        assert isinstance(
            decide(sighting, identity=ME, now=now + 9.9, wall_now=WALL, lease_duration=15), Wait
        )


# --- transitions and release ----------------------------------------------------------------------


def test_transitions_count_holder_changes_only() -> None:
    """a creates it (0); b takes it expired (1) and renews (1); b releases (1); a takes it released (2)."""

    def step(identity: str, record: LeaseRecord | None, since: float, now: float) -> LeaseRecord:
        decision = decide(
            Sighting(record, since), identity=identity, now=now, wall_now=WALL, lease_duration=15
        )
        assert isinstance(decision, Take | Renew)
        return decision.record

    created = step("a", None, 0, 0)
    taken = step("b", created, 0, 16)
    renewed = step("b", taken, 16, 18)
    released = release(renewed, WALL)
    retaken = step("a", released, 20, 20)

    counts = [r.lease_transitions for r in (created, taken, renewed, released, retaken)]
    holders = [r.holder for r in (created, taken, renewed, released, retaken)]
    assert counts == [0, 1, 1, 1, 2]
    assert holders == ["a", "b", "b", "", "a"]


def test_release_frees_the_lease_as_client_go_does() -> None:
    later = WALL + timedelta(seconds=3)

    assert release(held(ME, transitions=5), later) == LeaseRecord("", 1, later, later, 5)


# --- timing ---------------------------------------------------------------------------------------


def test_default_timing_is_client_gos() -> None:
    timing = ElectionTiming()

    assert (timing.lease_duration, timing.renew_deadline, timing.retry_period) == (15, 10, 2)
    assert timing.lease_duration_seconds == 15


@pytest.mark.parametrize(
    ("lease_duration", "renew_deadline", "retry_period", "complaint"),
    [
        pytest.param(15, 15, 2, "shorter than lease_duration", id="deadline-equal-to-duration"),
        pytest.param(15, 20, 2, "shorter than lease_duration", id="deadline-past-duration"),
        pytest.param(15, 0, 2, "renew_deadline", id="no-deadline"),
        pytest.param(15, 10, 10, "shorter than renew_deadline", id="retry-equal-to-deadline"),
        pytest.param(15, 10, 0, "retry_period", id="no-retry-period"),
        pytest.param(15.5, 10, 2, "whole seconds", id="fractional-duration"),
        pytest.param(0.5, 0.2, 0.1, "at least 1", id="sub-second-duration"),
        pytest.param(float("inf"), 10, 2, "at least 1", id="infinite-duration"),
    ],
)
def test_unsafe_timing_is_refused(
    lease_duration: float, renew_deadline: float, retry_period: float, complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        ElectionTiming(lease_duration, renew_deadline, retry_period)
