"""The standby's mirror of its watches: the latest body of each object, deletions forgotten."""

from __future__ import annotations

from typing import Any

from controller.reconcile.mirror import WatchMirror


def body(uid: str, rv: str, name: str = "") -> dict[str, Any]:
    return {"metadata": {"uid": uid, "name": name or uid, "resourceVersion": rv}}


def test_the_latest_body_of_each_object_is_kept_per_kind() -> None:
    mirror = WatchMirror()
    mirror.record("workspaces", None, body("a", "1"))
    mirror.record("workspaces", "MODIFIED", body("a", "2"))
    mirror.record("dockerhosts", "ADDED", body("a", "7"))
    kept = {(kind, b["metadata"]["resourceVersion"]) for kind, b in mirror.snapshot()}
    assert kept == {("workspaces", "2"), ("dockerhosts", "7")}


def test_a_deleted_object_is_forgotten() -> None:
    mirror = WatchMirror()
    mirror.record("workspaces", None, body("a", "1"))
    mirror.record("workspaces", None, body("b", "1"))
    mirror.record("workspaces", "DELETED", body("a", "2"))
    mirror.forget("workspaces", body("b", "3"))
    assert list(mirror.snapshot()) == []
    assert len(mirror) == 0


def test_a_snapshot_may_be_consumed_while_the_mirror_changes() -> None:
    mirror = WatchMirror()
    for uid in "abc":
        mirror.record("workspaces", None, body(uid, "1"))
    seen = []
    for kind, b in mirror.snapshot():
        seen.append(b["metadata"]["uid"])
        mirror.record(kind, "DELETED", b)
    assert sorted(seen) == ["a", "b", "c"]
