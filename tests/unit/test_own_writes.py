"""Telling the controller's own status writes from someone else's when the watch brings them back late."""

from __future__ import annotations

from controller.core.own_writes import ECHO_SECONDS, KEPT, OwnWrites

PROGRESSING = {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False", "reason": "Creating"}]}
READY = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "reason": "Running"}]}
BY_HAND = {"phase": "Failed"}


def test_the_latest_write_is_ours_and_any_other_status_is_not() -> None:
    writes = OwnWrites(READY)
    assert not writes.foreign(READY, 0.0)
    assert not writes.foreign({**READY, "message": None}, 0.0)  # the same status, semantically
    assert writes.foreign(BY_HAND, 0.0)
    assert writes.foreign({}, 0.0)


def test_the_late_echo_of_a_write_made_just_before_the_latest_is_ours() -> None:
    writes = OwnWrites(PROGRESSING).wrote(READY, now=100.0)
    assert not writes.foreign(PROGRESSING, 100.5)  # the watch brings the first write after the second
    assert not writes.foreign(READY, 100.5)
    assert writes.foreign(BY_HAND, 100.5)


def test_an_earlier_write_stops_counting_as_ours_once_its_echo_is_overdue() -> None:
    writes = OwnWrites(PROGRESSING).wrote(READY, now=100.0)
    assert writes.foreign(PROGRESSING, 100.0 + ECHO_SECONDS)  # someone put the old status back
    later = writes.wrote(BY_HAND, now=100.0 + ECHO_SECONDS)  # and the old entry is dropped on the next write
    assert [status for _, status in later.earlier] == [READY]


def test_only_a_bounded_number_of_earlier_writes_is_kept() -> None:
    writes = OwnWrites({"phase": "0"})
    for i in range(1, 3 * KEPT):
        writes = writes.wrote({"phase": str(i)}, now=float(i) / 100)
    assert len(writes.earlier) == KEPT
    assert writes.latest == {"phase": str(3 * KEPT - 1)}
    assert not writes.foreign({"phase": str(3 * KEPT - 2)}, 1.0)
    assert writes.foreign({"phase": "0"}, 1.0)
