"""Placement as a table: fit, spread, pins, selectors, cordon, readiness, the host network, ties, and what
an Unschedulable message says."""

from __future__ import annotations

from typing import Any

import pytest

from controller.api.workspace import Placement
from controller.core.causes import Reason
from controller.core.placement import (
    HostView,
    Placed,
    Request,
    Resources,
    Unschedulable,
    admits,
    place,
    placement_conflict,
)
from controller.core.tiers import DEFAULT_TIER_LIMITS

TIER1 = Request.for_tier(1, DEFAULT_TIER_LIMITS)  # 256 MiB, 0.5 CPU
TIER2 = Request.for_tier(2, DEFAULT_TIER_LIMITS)  # 512 MiB, 1 CPU
TIER4 = Request.for_tier(4, DEFAULT_TIER_LIMITS)  # 4096 MiB, 4 CPUs
ANYWHERE = Placement()


def host(
    name: str,
    *,
    memory: int = 4096,
    cpus: float = 4,
    used_memory: int = 0,
    used_cpus: float = 0,
    workspaces: int = 0,
    ready: bool = True,
    cordoned: bool = False,
    labels: dict[str, str] | None = None,
    host_network_taken: bool = False,
    measured: bool = True,
    bounded: bool = True,
) -> HostView:
    return HostView(
        name=name,
        labels=labels or {},
        ready=ready,
        unschedulable=cordoned,
        capacity=Resources(cpus, memory) if measured else None,
        allocated=Resources(used_cpus, used_memory),
        workspaces=workspaces,
        host_network_taken=host_network_taken,
        bounded=bounded,
    )


def placement(**body: Any) -> Placement:
    return Placement.model_validate(body)


def test_requests_follow_the_tier_limits() -> None:
    assert TIER1.resources == Resources(0.5, 256)
    assert TIER2.resources == Resources(1.0, 512)
    assert TIER4.resources == Resources(4.0, 4096)


# --- fit and spread ---------------------------------------------------------------------------------------


def test_the_least_loaded_host_after_placement_wins() -> None:
    hosts = [host("a", used_memory=2048, used_cpus=2), host("b", used_memory=512, used_cpus=1), host("c")]
    assert place(TIER2, ANYWHERE, hosts) == Placed("c")


def test_load_is_the_larger_of_memory_and_cpu_fractions() -> None:
    # a: memory nearly free but CPUs nearly full; b: half full on both.
    hosts = [host("a", used_memory=0, used_cpus=3), host("b", used_memory=2048, used_cpus=2)]
    assert place(TIER2, ANYWHERE, hosts) == Placed("b")


def test_hosts_of_different_sizes_fill_in_proportion() -> None:
    big, small = host("big", memory=8192, cpus=8), host("small", memory=2048, cpus=2)
    placed: dict[str, int] = {"big": 0, "small": 0}
    views = {"big": big, "small": small}
    for _ in range(10):
        chosen = place(TIER2, ANYWHERE, list(views.values()))
        assert isinstance(chosen, Placed)
        placed[chosen.host] += 1
        view = views[chosen.host]
        views[chosen.host] = host(
            view.name,
            memory=view.capacity.memory_mib if view.capacity else 0,
            cpus=view.capacity.cpus if view.capacity else 0,
            used_memory=view.allocated.memory_mib + 512,
            used_cpus=view.allocated.cpus + 1,
            workspaces=view.workspaces + 1,
        )
    assert placed == {"big": 8, "small": 2}


def test_ties_go_to_fewer_workspaces_then_to_the_name() -> None:
    assert place(TIER2, ANYWHERE, [host("b"), host("a")]) == Placed("a")
    assert place(TIER2, ANYWHERE, [host("a", workspaces=1), host("b")]) == Placed("b")


def test_a_host_exactly_full_after_placement_still_fits() -> None:
    assert place(TIER2, ANYWHERE, [host("a", memory=512, cpus=1)]) == Placed("a")


@pytest.mark.parametrize(
    ("view", "says"),
    [
        (host("a", memory=256), "a has only 256 MiB free"),
        (host("a", cpus=0.5), "a has only 0.5 CPUs free"),
        (
            host("a", memory=1024, used_memory=1024, cpus=1, used_cpus=0.75),
            "a has only 0 MiB and 0.25 CPUs free",
        ),
        (host("a", ready=False), "a is not Ready"),
        (host("a", measured=False), "a is not Ready"),
        (host("a", cordoned=True), "a is cordoned (unschedulable)"),
    ],
)
def test_a_host_that_cannot_take_it_says_why(view: HostView, says: str) -> None:
    result = place(TIER2, ANYWHERE, [view])
    assert isinstance(result, Unschedulable)
    assert result.cause.reason == Reason.UNSCHEDULABLE
    assert result.cause.message == f"no DockerHost can take a tier 2 Workspace (512 MiB, 1 CPU): {says}"


def test_the_message_details_six_hosts_and_counts_the_rest() -> None:
    hosts = [host(f"h{i}", ready=False) for i in range(9)]
    result = place(TIER1, ANYWHERE, hosts)
    assert isinstance(result, Unschedulable)
    assert result.cause.message.endswith("h5 is not Ready; and 3 more")
    assert "0.5 CPUs" in result.cause.message


def test_no_host_at_all_is_unschedulable() -> None:
    result = place(TIER2, ANYWHERE, [])
    assert isinstance(result, Unschedulable)
    assert result.cause.message == "there is no DockerHost to place the Workspace on"


# --- pins and selectors -----------------------------------------------------------------------------------


def test_a_pin_goes_where_it_says_even_to_the_fuller_host() -> None:
    hosts = [host("a", used_memory=3072, used_cpus=3), host("b")]
    assert place(TIER2, placement(host="a"), hosts) == Placed("a")


def test_a_pin_to_a_missing_host_says_so() -> None:
    result = place(TIER2, placement(host="gone"), [host("a")])
    assert isinstance(result, Unschedulable)
    assert result.cause.message == "DockerHost gone (spec.placement.host) does not exist"


def test_a_pin_to_a_full_host_waits_rather_than_going_elsewhere() -> None:
    result = place(TIER2, placement(host="a"), [host("a", memory=256), host("b")])
    assert isinstance(result, Unschedulable)
    assert "a has only 256 MiB free" in result.cause.message
    assert "b" not in result.cause.message.split(":", 1)[1]


def test_a_selector_chooses_among_the_matching_hosts() -> None:
    hosts = [
        host("gpu-1", labels={"gpu": "yes"}, used_memory=1024),
        host("gpu-2", labels={"gpu": "yes"}),
        host("cpu"),
    ]
    assert place(TIER2, placement(hostSelector={"matchLabels": {"gpu": "yes"}}), hosts) == Placed("gpu-2")
    expression = {"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}
    assert place(TIER2, placement(hostSelector=expression), hosts) == Placed("cpu")


def test_a_selector_matching_nothing_says_so() -> None:
    result = place(TIER2, placement(hostSelector={"matchLabels": {"zone": "mars"}}), [host("a"), host("b")])
    assert isinstance(result, Unschedulable)
    assert result.cause.message == "no DockerHost matches spec.placement.hostSelector (of 2 hosts)"


def test_an_empty_selector_selects_every_host() -> None:
    assert place(TIER2, placement(hostSelector={}), [host("a")]) == Placed("a")


def test_a_pin_and_a_selector_together_are_refused_by_the_schema() -> None:
    with pytest.raises(ValueError, match="host or hostSelector, not both"):
        placement(host="a", hostSelector={})


# --- the host network -------------------------------------------------------------------------------------


def test_tier_4_takes_a_host_without_another_tier_4() -> None:
    hosts = [host("a", memory=16384, cpus=16, host_network_taken=True), host("b", memory=8192, cpus=8)]
    assert place(TIER4, ANYWHERE, hosts) == Placed("b")
    result = place(TIER4, ANYWHERE, hosts[:1])
    assert isinstance(result, Unschedulable)
    assert "a already runs a tier 4 Workspace" in result.cause.message
    # Other tiers do not care.
    assert place(TIER2, ANYWHERE, hosts[:1]) == Placed("a")


# --- once placed ------------------------------------------------------------------------------------------


def test_admits_reads_pins_and_selectors() -> None:
    assert admits(ANYWHERE, "a", {})
    assert admits(placement(host="a"), "a", {})
    assert not admits(placement(host="b"), "a", {})
    assert admits(placement(hostSelector={"matchLabels": {"x": "1"}}), "a", {"x": "1"})
    assert not admits(placement(hostSelector={"matchLabels": {"x": "1"}}), "a", {})


def test_a_placed_workspace_whose_spec_now_asks_elsewhere_is_told_it_stays() -> None:
    assert placement_conflict(placement(host="a"), "a", {}) is None
    cause = placement_conflict(placement(host="b"), "a", {})
    assert cause is not None
    assert cause.reason == Reason.PLACEMENT_CONFLICT
    assert cause.message == (
        "the Workspace is placed on DockerHost a, where its volumes are, and stays there; "
        "spec.placement now asks for DockerHost b: to move it, delete and recreate the Workspace"
    )
    selected = placement_conflict(placement(hostSelector={"matchLabels": {"x": "1"}}), "a", {})
    assert selected is not None
    assert "hosts matching spec.placement.hostSelector" in selected.message


def test_the_unbounded_implicit_host_takes_what_does_not_fit_but_still_weighs_in_the_spread() -> None:
    full = host("local", memory=1024, cpus=2, used_memory=1024, used_cpus=2, bounded=False)
    assert place(TIER2, placement(), [full]) == Placed("local")
    roomy = host("roomy", memory=4096, cpus=4)
    assert place(TIER2, placement(), [full, roomy]) == Placed("roomy")


def test_the_unbounded_host_still_needs_to_be_ready_schedulable_and_free_of_another_tier_4() -> None:
    assert isinstance(place(TIER2, placement(), [host("local", bounded=False, ready=False)]), Unschedulable)
    assert isinstance(place(TIER2, placement(), [host("local", bounded=False, cordoned=True)]), Unschedulable)
    taken = host("local", bounded=False, host_network_taken=True)
    assert isinstance(place(TIER4, placement(), [taken]), Unschedulable)
