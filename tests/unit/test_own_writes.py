"""Telling the controller's own status writes from someone else's when the watch brings them back late,
and a Workspace read before the watch caught up with the latest write."""

from __future__ import annotations

from controller.core.own_writes import ECHO_SECONDS, KEPT, OwnWrites

NONE: dict[str, object] = {}
PROGRESSING = {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False", "reason": "Creating"}]}
READY = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "reason": "Running"}]}
BY_HAND = {"phase": "Failed"}


def test_the_latest_write_is_ours_and_any_other_status_is_not() -> None:
    writes = OwnWrites.first(NONE, READY, 0.0)
    assert not writes.foreign(READY, 0.0)
    assert not writes.foreign({**READY, "message": None}, 0.0)  # the same status, semantically
    assert writes.foreign(BY_HAND, 0.0)
    # The status the first write went over was in the watch before it: seen again, someone wrote it.
    assert writes.foreign(NONE, 0.0)


def test_the_late_echo_of_a_write_made_just_before_the_latest_is_ours() -> None:
    writes = OwnWrites.first(NONE, PROGRESSING, 99.0).wrote(PROGRESSING, READY, now=100.0)
    assert not writes.foreign(PROGRESSING, 100.5)  # the watch brings the first write after the second
    assert not writes.foreign(READY, 100.5)
    assert writes.foreign(BY_HAND, 100.5)


def test_an_earlier_write_stops_counting_as_ours_once_its_echo_is_overdue() -> None:
    writes = OwnWrites.first(NONE, PROGRESSING, 99.0).wrote(PROGRESSING, READY, now=100.0)
    assert writes.foreign(PROGRESSING, 100.0 + ECHO_SECONDS)  # someone put the old status back
    later = writes.wrote(READY, BY_HAND, now=100.0 + ECHO_SECONDS)  # the old entry goes on the next write
    assert [status for _, status in later.earlier] == [READY]


def test_only_a_bounded_number_of_earlier_writes_is_kept() -> None:
    writes = OwnWrites.first(NONE, {"phase": "0"}, 0.0)
    for i in range(1, 3 * KEPT):
        writes = writes.wrote(writes.latest, {"phase": str(i)}, now=float(i) / 100)
    assert len(writes.earlier) == KEPT
    assert writes.latest == {"phase": str(3 * KEPT - 1)}
    assert not writes.foreign({"phase": str(3 * KEPT - 2)}, 1.0)
    assert writes.foreign({"phase": "0"}, 1.0)


def test_a_workspace_read_before_the_watch_brought_the_latest_write_is_behind() -> None:
    writes = OwnWrites.first(NONE, PROGRESSING, 10.0)
    assert writes.behind(NONE, 10.5)  # woken while the first write was under way: read without it
    assert not writes.behind(PROGRESSING, 10.5)
    assert not writes.behind(BY_HAND, 10.5)  # someone else's: not ours to build over
    writes = writes.wrote(PROGRESSING, READY, 11.0)
    assert writes.behind(PROGRESSING, 11.5)
    assert writes.behind(NONE, 11.5)
    assert not writes.behind(READY, 11.5)
    assert not writes.behind(NONE, 10.0 + ECHO_SECONDS)  # long since: whoever wrote it, it is news


def test_a_write_over_someone_elses_status_starts_afresh() -> None:
    writes = OwnWrites.first(NONE, PROGRESSING, 10.0).wrote(BY_HAND, READY, 11.0)
    assert writes.earlier == ()
    assert writes.base == (11.0, BY_HAND)
    assert writes.foreign(PROGRESSING, 11.5)
