"""Sandboxed runtimes: spec.containerRuntime placed only where a DockerHost offers it, sent to Docker at
create, hashed only when set; a namespace's policy can require one; `docker info` read for them."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from controller.api.policy import WorkspacePolicySpec
from controller.api.workspace import WorkspaceSpec
from controller.core.causes import Reason
from controller.core.placement import HostView, Placed, Request, Resources, Unschedulable, place
from controller.core.policy import grant_for, policy_denial, runtime_message
from controller.core.tiers import DEFAULT_TIER_LIMITS
from controller.docker.create_args import create_args
from controller.docker.parse import parse_info
from tests.support.plans import make_plan
from tests.unit.test_readiness import PINNED_HASH

GVISOR = frozenset({"io.containerd.runc.v2", "runc", "runsc"})
PLAIN = frozenset({"io.containerd.runc.v2", "runc"})
NO_PLACEMENT = WorkspaceSpec().placement


def host(name: str, runtimes: frozenset[str] | None) -> HostView:
    return HostView(
        name=name,
        labels={},
        ready=True,
        unschedulable=False,
        capacity=Resources(8.0, 16384),
        allocated=Resources(),
        runtimes=runtimes,
    )


def request(runtime: str | None) -> Request:
    return Request.for_tier(2, DEFAULT_TIER_LIMITS, runtime)


def test_a_workspace_asking_for_runsc_goes_only_where_it_is_offered() -> None:
    hosts = [host("a-plain", PLAIN), host("b-gvisor", GVISOR)]
    for _ in range(3):
        assert place(request("runsc"), NO_PLACEMENT, hosts) == Placed("b-gvisor")
    assert place(request(None), NO_PLACEMENT, [host("a-plain", PLAIN)]) == Placed("a-plain")


def test_a_runtime_no_host_offers_is_unschedulable_saying_what_each_offers() -> None:
    result = place(request("kata"), NO_PLACEMENT, [host("a", PLAIN), host("b", GVISOR)])
    assert isinstance(result, Unschedulable)
    assert result.cause.reason == Reason.UNSCHEDULABLE
    assert result.cause.message == (
        "no DockerHost can take a tier 2 Workspace (512 MiB, 1 CPU) under container runtime kata: "
        "a does not offer the container runtime kata (it offers io.containerd.runc.v2, runc); "
        "b does not offer the container runtime kata (it offers io.containerd.runc.v2, runc, runsc)"
    )


def test_docker_info_runtimes_are_read_by_name() -> None:
    info: Mapping[str, Any] = {
        "ServerVersion": "20.10.24",
        "Runtimes": {"runc": {"path": "runc"}, "runsc": {"path": "/usr/bin/runsc"}},
    }
    assert parse_info(info).runtimes == ("runc", "runsc")
    assert parse_info({}).runtimes == ()


def test_the_runtime_is_sent_at_create_and_hashed_only_when_set() -> None:
    plain = make_plan()
    sandboxed = make_plan({"containerRuntime": "runsc"})
    assert "runtime" not in create_args(plain.container, None).host_config
    assert create_args(sandboxed.container, None).host_config["runtime"] == "runsc"
    assert plain.config_hash != sandboxed.config_hash


def test_a_policy_can_require_a_runtime_and_the_workspace_must_use_it() -> None:
    policies = [
        (
            "sandboxed",
            WorkspacePolicySpec.model_validate({"namespaceSelector": {}, "requireContainerRuntime": "runsc"}),
        )
    ]
    grant = grant_for(policies, {})
    assert grant.required_runtimes == frozenset({"runsc"})
    denied = policy_denial(WorkspaceSpec(), "team-a", grant, "registry.local/molecule-ai")
    assert denied is not None
    assert denied.reason == Reason.POLICY_DENIED
    assert denied.message == runtime_message(None, "team-a", frozenset({"runsc"}))
    assert denied.message == (
        "the host's default container runtime is not allowed in namespace team-a: its WorkspacePolicies "
        "require spec.containerRuntime runsc"
    )
    allowed = WorkspaceSpec.model_validate({"containerRuntime": "runsc"})
    assert policy_denial(allowed, "team-a", grant, "registry.local/molecule-ai") is None
    # A namespace no policy requires anything of takes any runtime.
    assert policy_denial(WorkspaceSpec(), "team-a", grant_for([], {}), "registry.local/molecule-ai") is None


def test_a_placed_workspace_whose_host_lacks_its_runtime_is_stopped_not_left_running() -> None:
    from tests.unit.test_reconciler import running_world

    async def scenario() -> None:
        world = await running_world()
        container = world.container()
        world.change_spec(containerRuntime="runsc")
        mark = world.mark()
        await world.reconcile()
        assert world.writes_since(mark) == [("stop_container", container.id)]
        assert world.cond("Stalled") == ("True", "Unschedulable")
        assert "does not offer the container runtime runsc" in str(world.condition("Stalled"))

    asyncio.run(scenario())


def test_an_unset_runtime_leaves_the_hash_of_existing_containers_as_it_was() -> None:
    # The hash make_plan() has had since before spec.readiness and spec.containerRuntime existed.
    assert make_plan().config_hash == PINNED_HASH
    assert make_plan({"containerRuntime": "runsc"}).config_hash != PINNED_HASH
