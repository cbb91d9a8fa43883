"""The orphan sweep's safety rules (the pure plan) and what a pass does when it cannot see everything.

The end-to-end tests run the same rules against a real daemon and apiserver; here every rule is pinned
one at a time, and the pass outcomes are driven by the in-memory fakes of the runtime port and the
Kubernetes API (tests/support).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import REGISTRY

from controller import metrics
from controller.core import labels
from controller.core.orphans import Candidate, SweepPlan, orphaned_networks, plan_sweep
from controller.port.errors import RuntimeUnavailable
from controller.port.values import ContainerSpec, File, FileTree
from controller.reconcile.orphan_sweeper import OrphanSweeper
from controller.settings import ControllerSettings
from tests.support.fake_kube import FakeKube
from tests.support.fake_runtime import FakeRuntime

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

IMAGE = "registry.test/agent:1"
CONFIGS = FileTree("/configs", {"config.yaml": File(b"x")})


def container_spec(candidate: Candidate, binds: tuple[str, ...]) -> ContainerSpec:
    return ContainerSpec(
        name=candidate.name, image=IMAGE, platform=None, env=(), labels=candidate.labels,
        exposed_port="8000/tcp", port_bindings=(), restart_policy="unless-stopped", network=None,
        aliases=(), binds=binds, read_only_rootfs=False, tmpfs={}, memory=0, nano_cpus=0,
        privileged=False, pid_mode=None, network_mode="none", cap_drop=(), cap_add=(), security_opt=(),
        pids_limit=0,
    )  # fmt: skip


async def build(world: FakeRuntime, containers: list[Candidate], volumes: list[Candidate]) -> None:
    """Volumes, then running containers mounting their workspace's configs volume, made through the port."""
    await world.pull_image(IMAGE)
    for volume_candidate in volumes:
        await world.ensure_volume(volume_candidate.name, volume_candidate.labels)
    for candidate in containers:
        binds = (f"{candidate.name}-configs:/configs",)
        container_id = await world.create_container(container_spec(candidate, binds), CONFIGS)
        await world.start_container(container_id)


def orphan_world() -> FakeRuntime:
    """A vanished Workspace (GONE) and a live one (LIVE), each with a container and a configs volume."""
    world = FakeRuntime(registry={IMAGE: "sha256:" + "a" * 64})
    asyncio.run(
        build(
            world,
            [container(GONE, policy="Delete"), container(LIVE, policy="Delete")],
            [volume(GONE), volume(LIVE)],
        )
    )
    return world


def cluster(*, namespaced_rbac: bool = False) -> FakeKube:
    """The API server holds the LIVE Workspace only."""
    return FakeKube(
        workspaces=[{"metadata": {"uid": LIVE, "namespace": "ns", "name": "w"}}],
        namespaced_rbac=namespaced_rbac,
    )


def sweeper(runtime: FakeRuntime, kube: FakeKube, *, dry_run: bool = False) -> OrphanSweeper:
    settings = ControllerSettings(instance=INSTANCE, sweep_grace_seconds=int(GRACE), sweep_dry_run=dry_run)
    return OrphanSweeper(runtime=runtime, kube=kube, settings=settings, clock=lambda: NOW)


def removals(runtime: FakeRuntime) -> list[tuple[str, str]]:
    return [(op, subject) for op, subject in runtime.calls if op in ("remove_container", "remove_volume")]


def container_id(runtime: FakeRuntime, uid: str) -> str:
    found = runtime.by_name(f"ws-{uid[:12]}")
    assert found is not None
    return found.id


@pytest.fixture(autouse=True)
def _unknown_orphan_counts() -> None:
    """The gauges are process-wide: start each test from a value no pass would set."""
    for kind in ("container", "volume"):
        metrics.SWEEP_ORPHANS.labels(kind).set(-1)


def gauge(kind: str) -> float | None:
    return REGISTRY.get_sample_value("workspace_controller_sweep_orphans", {"kind": kind})


def test_a_pass_removes_the_orphans_container_then_its_volumes() -> None:
    runtime = orphan_world()
    gone = container_id(runtime, GONE)
    report = asyncio.run(sweeper(runtime, cluster()).sweep_once())
    assert report.outcome == "completed"
    assert removals(runtime) == [("remove_container", gone), ("remove_volume", f"ws-{GONE[:12]}-configs")]
    assert [c.name for c in runtime.containers.values()] == [f"ws-{LIVE[:12]}"]
    assert list(runtime.volumes) == [f"ws-{LIVE[:12]}-configs"]
    assert gauge("container") == 1
    assert gauge("volume") == 1


@pytest.mark.parametrize(
    ("docker_fault", "api_up"),
    [(None, False), ("ping", True), ("list_volumes", True)],
    ids=["api-unreachable", "docker-down", "docker-list-fails"],
)
def test_a_pass_that_cannot_see_everything_removes_nothing(docker_fault: str | None, api_up: bool) -> None:
    runtime = orphan_world()
    if docker_fault is not None:
        runtime.fail(docker_fault, RuntimeUnavailable("Docker daemon did not answer"), always=True)
    kube = cluster()
    kube.unreachable = not api_up
    report = asyncio.run(sweeper(runtime, kube).sweep_once())
    assert report.outcome == "skipped"
    assert report.why_skipped
    assert removals(runtime) == []
    assert len(runtime.containers) == len(runtime.volumes) == 2
    assert gauge("container") == -1  # a blind pass does not claim to know how many orphans there are


def test_a_dry_run_removes_nothing_and_counts_what_it_would_remove() -> None:
    runtime = orphan_world()
    report = asyncio.run(sweeper(runtime, cluster(), dry_run=True).sweep_once())
    assert report.outcome == "dry_run"
    assert removals(runtime) == []
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
    runtime = orphan_world()
    gone = container_id(runtime, GONE)
    kube = cluster(namespaced_rbac=True)
    report = asyncio.run(sweeper(runtime, kube).sweep_once())
    assert report.outcome == "completed"
    assert kube.workspace_lists == [None, "ns"]
    assert removals(runtime) == [("remove_container", gone), ("remove_volume", f"ws-{GONE[:12]}-configs")]


def test_a_candidate_without_a_namespace_label_is_never_an_orphan() -> None:
    labels_without_namespace = {**owned(GONE, policy="Delete")}
    del labels_without_namespace[labels.NAMESPACE_LABEL]
    result = plan([Candidate(f"ws-{GONE[:12]}", labels_without_namespace, OLD, "id")])
    assert result.containers == ()
    assert skipped(result)[f"ws-{GONE[:12]}"] == "no-owner-label"


def test_a_volume_made_after_the_pass_that_removed_its_container_goes_in_the_next_pass() -> None:
    """The pass lists containers, then volumes: a volume made in between is only seen by the next pass,
    which must still know that its container said Delete."""
    runtime = FakeRuntime(registry={IMAGE: "sha256:" + "a" * 64})
    asyncio.run(build(runtime, [container(GONE, policy="Delete")], []))
    sweep = sweeper(runtime, cluster())
    asyncio.run(sweep.sweep_once())
    assert runtime.containers == {}
    asyncio.run(runtime.ensure_volume(volume(GONE).name, volume(GONE).labels))

    asyncio.run(sweep.sweep_once())
    assert runtime.volumes == {}


def test_a_removed_orphan_whose_volume_never_shows_is_forgotten_after_the_next_pass() -> None:
    runtime = FakeRuntime(registry={IMAGE: "sha256:" + "a" * 64})
    asyncio.run(build(runtime, [container(GONE, policy="Delete")], []))
    sweep = sweeper(runtime, cluster())
    asyncio.run(sweep.sweep_once())
    asyncio.run(sweep.sweep_once())
    asyncio.run(runtime.ensure_volume(volume(GONE).name, volume(GONE).labels))

    report = asyncio.run(sweep.sweep_once())
    assert list(runtime.volumes) == [volume(GONE).name]  # never guessed at: no container said Delete
    assert report.plan is not None
    assert {s.name: s.reason for s in report.plan.skipped}[volume(GONE).name] == "no-container"


def test_orphaned_networks_are_those_of_this_instance_whose_workspace_is_gone() -> None:
    networks = {
        "gone-isolated": owned(GONE),
        "live-isolated": owned(LIVE),
        "other-instance": owned(GONE, instance="green"),
        "no-owner": owned(None),
        "foreign": {"com.example": "x"},
    }
    assert orphaned_networks(networks, instance=INSTANCE, live_uids={LIVE}) == ["gone-isolated"]


def test_a_pass_removes_an_isolated_orphans_internal_network_and_keeps_a_live_ones() -> None:
    runtime = orphan_world()
    runtime.network_labels.update({"ws-gone-isolated": owned(GONE), "ws-live-isolated": owned(LIVE)})
    runtime.networks.update({"ws-gone-isolated": "n1", "ws-live-isolated": "n2"})
    report = asyncio.run(sweeper(runtime, cluster()).sweep_once())
    assert report.outcome == "completed"
    assert set(runtime.networks) == {"ws-live-isolated"}
