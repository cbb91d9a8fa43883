"""The orphan sweep's safety rules (the pure plan) and what a pass does when it cannot see everything.

The end-to-end tests run the same rules against a real daemon and apiserver; here every rule is pinned
one at a time, and the pass outcomes are driven by small stand-ins for Docker and the API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY

from controller import metrics
from controller.core import labels
from controller.core.sweep import Candidate, SweepPlan, plan_sweep
from controller.docker.adapter import DockerAdapter
from controller.docker.errors import DockerUnavailable
from controller.docker.observed import ObservedContainer, ObservedVolume
from controller.kube.client import ApiError, KubeClient
from controller.settings import ControllerSettings
from controller.sweep import OrphanSweeper

INSTANCE = "blue"
NOW = 10_000.0
GRACE = 300.0
OLD = NOW - GRACE - 1
LIVE = "11111111-1111-1111-1111-111111111111"
GONE = "22222222-2222-2222-2222-222222222222"


def owned(uid: str | None, instance: str = INSTANCE, policy: str | None = None) -> dict[str, str]:
    result = {labels.MANAGED_LABEL: labels.MANAGED_VALUE, labels.INSTANCE_LABEL: instance}
    if uid:
        result |= {labels.UID_LABEL: uid, labels.NAMESPACE_LABEL: "ns", labels.NAME_LABEL: "w"}
    if policy:
        result[labels.DELETION_POLICY_LABEL] = policy
    return result


def container(uid: str | None, *, created: float | None = OLD, **kw: Any) -> Candidate:
    return Candidate(f"ws-{(uid or 'nouid')[:12]}", owned(uid, **kw), created, f"id-{uid}")


def volume(
    uid: str,
    suffix: str = "configs",
    *,
    created: float | None = OLD,
    policy: str | None = "Delete",
    **kw: Any,
) -> Candidate:
    """Volumes carry the deletion policy the Workspace had when they were made (Delete by default)."""
    return Candidate(f"ws-{uid[:12]}-{suffix}", owned(uid, policy=policy, **kw), created)


def plan(
    containers: list[Candidate], volumes: list[Candidate] | None = None, grace: float = GRACE
) -> SweepPlan:
    return plan_sweep(containers, volumes or [], instance=INSTANCE, live_uids={LIVE}, now=NOW, grace=grace)


def skipped(result: SweepPlan) -> dict[str, str]:
    return {skip.name: skip.reason for skip in result.skipped}


def test_a_labelled_container_of_a_vanished_workspace_goes_with_its_delete_volumes() -> None:
    result = plan(
        [container(GONE, policy="Delete")],
        [volume(GONE, "configs"), volume(GONE, "workspace")],
    )
    assert [c.name for c in result.containers] == [f"ws-{GONE[:12]}"]
    assert [v.name for v in result.volumes] == [f"ws-{GONE[:12]}-configs", f"ws-{GONE[:12]}-workspace"]


@pytest.mark.parametrize("policy", ["Retain", None], ids=["Retain", "no-policy-label"])
def test_volumes_are_retained_unless_the_container_says_delete(policy: str | None) -> None:
    result = plan([container(GONE, policy=policy)], [volume(GONE, policy="Delete")])
    assert len(result.containers) == 1
    assert result.volumes == ()
    assert skipped(result) == {f"ws-{GONE[:12]}-configs": "retained"}


def test_a_live_workspaces_objects_are_neither_removed_nor_reported() -> None:
    result = plan([container(LIVE, policy="Delete")], [volume(LIVE)])
    assert result.containers == ()
    assert result.volumes == ()
    assert result.skipped == ()


def test_a_volume_without_its_container_is_never_guessed_at() -> None:
    result = plan([], [volume(GONE, policy="Delete")])
    assert result.volumes == ()
    assert skipped(result) == {f"ws-{GONE[:12]}-configs": "no-container"}


@pytest.mark.parametrize(
    "candidate",
    [
        Candidate("ws-aaaaaaaaaaaa", {}, OLD),
        Candidate("ws-aaaaaaaaaaaa", {labels.MANAGED_LABEL: labels.MANAGED_VALUE}, OLD),
        container(GONE, instance="green", policy="Delete"),
        Candidate("ws-aaaaaaaaaaaa", {**owned(GONE), labels.MANAGED_LABEL: "false"}, OLD),
    ],
    ids=["unlabelled", "managed-only", "other-instance", "managed-false"],
)
def test_objects_of_anyone_else_are_not_ours(candidate: Candidate) -> None:
    result = plan([candidate], [candidate])
    assert result.containers == ()
    assert result.volumes == ()
    assert {skip.reason for skip in result.skipped} == {"not-ours"}


def test_this_instances_container_without_a_workspace_uid_is_left_alone() -> None:
    result = plan([container(None)])
    assert result.containers == ()
    assert skipped(result) == {"ws-nouid": "no-owner-label"}


@pytest.mark.parametrize("created", [NOW - GRACE + 1, NOW, None], ids=["young", "just-made", "unknown-age"])
def test_an_orphan_inside_the_creation_grace_is_left_for_a_later_pass(created: float | None) -> None:
    result = plan([container(GONE, created=created, policy="Delete")], [volume(GONE, created=created)])
    assert result.containers == ()
    assert result.volumes == ()
    assert set(skipped(result).values()) == {"within-grace"}


def test_the_grace_ends_exactly_grace_seconds_after_creation() -> None:
    assert len(plan([container(GONE, created=NOW - GRACE)]).containers) == 1
    assert len(plan([container(GONE, created=NOW - GRACE + 0.001)]).containers) == 0
    assert len(plan([container(GONE, created=NOW)], grace=0).containers) == 1


# --- a pass ---------------------------------------------------------------------------------------------


def _observed(candidate: Candidate) -> ObservedContainer:
    return ObservedContainer(
        id=candidate.id,
        name=candidate.name,
        image="img",
        image_id="sha256:x",
        labels=candidate.labels,
        state="running",
        health=None,
        exit_code=None,
        host_port=None,
        created=candidate.created,
        detail=False,
    )


class Docker:
    def __init__(self, containers: list[Candidate], volumes: list[Candidate], *, up: bool = True) -> None:
        self.containers = containers
        self.volumes = volumes
        self.up = up
        self.removed: list[str] = []

    async def ping(self) -> bool:
        return self.up

    async def list_containers(self, selector: Mapping[str, str]) -> list[ObservedContainer]:
        if not self.up:
            raise DockerUnavailable("down")
        return [_observed(c) for c in self.containers]

    async def list_volumes(self, selector: Mapping[str, str]) -> list[ObservedVolume]:
        return [ObservedVolume(v.name, v.labels, "local", v.created) for v in self.volumes]

    async def remove_container(self, container_id: str) -> None:
        self.removed.append(container_id)

    async def remove_volume(self, name: str) -> None:
        self.removed.append(name)


class Kube:
    """Workspace lists as the API server answers them; `namespaced` = only per-namespace lists allowed."""

    def __init__(self, uids: list[str] | None, *, namespaced: bool = False) -> None:
        self.uids = uids
        self.namespaced = namespaced
        self.listed: list[str | None] = []

    async def list_workspaces(self, namespace: str | None = None) -> list[dict[str, Any]]:
        self.listed.append(namespace)
        if self.uids is None:
            raise ApiError(0, "Unreachable", "connection reset")
        if self.namespaced and namespace is None:
            raise ApiError(403, "Forbidden", "cannot list resource workspaces at the cluster scope")
        return [{"metadata": {"uid": uid}} for uid in self.uids]


def sweeper(docker: Docker, kube: Kube, *, dry_run: bool = False) -> OrphanSweeper:
    settings = ControllerSettings(instance=INSTANCE, sweep_grace_seconds=int(GRACE), sweep_dry_run=dry_run)
    return OrphanSweeper(
        docker=cast(DockerAdapter, docker), kube=cast(KubeClient, kube), settings=settings, clock=lambda: NOW
    )


def orphan_world() -> Docker:
    return Docker(
        [container(GONE, policy="Delete"), container(LIVE, policy="Delete")], [volume(GONE), volume(LIVE)]
    )


@pytest.fixture(autouse=True)
def _unknown_orphan_counts() -> None:
    """The gauges are process-wide: start each test from a value no pass would set."""
    for kind in ("container", "volume"):
        metrics.SWEEP_ORPHANS.labels(kind).set(-1)


def gauge(kind: str) -> float | None:
    return REGISTRY.get_sample_value("workspace_controller_sweep_orphans", {"kind": kind})


def test_a_pass_removes_the_orphans_container_then_its_volumes() -> None:
    docker = orphan_world()
    report = asyncio.run(sweeper(docker, Kube([LIVE])).sweep_once())
    assert report.outcome == "completed"
    assert docker.removed == [f"id-{GONE}", f"ws-{GONE[:12]}-configs"]
    assert gauge("container") == 1
    assert gauge("volume") == 1


@pytest.mark.parametrize(
    ("docker_up", "uids"), [(True, None), (False, [LIVE])], ids=["api-unreachable", "docker-down"]
)
def test_a_pass_that_cannot_see_everything_removes_nothing(docker_up: bool, uids: list[str] | None) -> None:
    docker = orphan_world()
    docker.up = docker_up
    report = asyncio.run(sweeper(docker, Kube(uids)).sweep_once())
    assert report.outcome == "skipped"
    assert report.why_skipped
    assert docker.removed == []
    assert gauge("container") == -1  # a blind pass does not claim to know how many orphans there are


def test_a_dry_run_removes_nothing_and_counts_what_it_would_remove() -> None:
    docker = orphan_world()
    report = asyncio.run(sweeper(docker, Kube([LIVE]), dry_run=True).sweep_once())
    assert report.outcome == "dry_run"
    assert docker.removed == []
    assert report.plan is not None
    assert [c.name for c in report.plan.containers] == [f"ws-{GONE[:12]}"]
    assert gauge("container") == 1
    assert gauge("volume") == 1


def test_a_volume_made_under_retain_is_kept_even_if_its_container_says_delete() -> None:
    result = plan([container(GONE, policy="Delete")], [volume(GONE, policy="Retain")])
    assert result.volumes == ()
    assert skipped(result)[f"ws-{GONE[:12]}-configs"] == "retained"


def test_volumes_of_an_orphan_whose_container_an_earlier_pass_removed_are_retried() -> None:
    result = plan_sweep(
        [],
        [volume(GONE)],
        instance=INSTANCE,
        live_uids={LIVE},
        now=NOW,
        grace=GRACE,
        earlier_policies={GONE: "Delete"},
    )
    assert [v.name for v in result.volumes] == [f"ws-{GONE[:12]}-configs"]


def test_under_namespaced_rbac_a_pass_lists_the_namespaces_its_candidates_name() -> None:
    docker = orphan_world()
    kube = Kube([LIVE], namespaced=True)
    report = asyncio.run(sweeper(docker, kube).sweep_once())
    assert report.outcome == "completed"
    assert kube.listed == [None, "ns"]
    assert docker.removed == [f"id-{GONE}", f"ws-{GONE[:12]}-configs"]


def test_a_candidate_without_a_namespace_label_is_never_an_orphan() -> None:
    labels_without_namespace = {**owned(GONE, policy="Delete")}
    del labels_without_namespace[labels.NAMESPACE_LABEL]
    result = plan([Candidate(f"ws-{GONE[:12]}", labels_without_namespace, OLD, "id")])
    assert result.containers == ()
    assert skipped(result)[f"ws-{GONE[:12]}"] == "no-owner-label"
