"""A DockerHost's status as a pure function: the Ready condition and when its lastTransitionTime moves,
what `docker info` said, the capacity placement may fill (overrides, else the daemon's), what is
allocated there (every tier listed, zeros included) and the camelCase shape the CRD declares."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.api.dockerhost import DockerHostStatus
from controller.api.workspace import Condition
from controller.core.host_status import CONNECTING, MIB, REACHABLE, UNREACHABLE, capacity_of, host_status
from controller.core.placement import Resources
from controller.port.values import HostFacts

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
FACTS = HostFacts(
    server_version="27.3.1",
    api_version="1.47",
    operating_system="Ubuntu 24.04",
    architecture="x86_64",
    cpus=8,
    memory_bytes=16 * 1024 * MIB,
)
CAPACITY = Resources(8.0, 16384)
NOTHING = Resources()


def status(
    *,
    generation: int | None = 3,
    answered: bool | None = True,
    problem: str = "",
    facts: HostFacts | None = FACTS,
    capacity: Resources | None = CAPACITY,
    allocated: Resources = NOTHING,
    workspaces: int = 0,
    by_tier: Mapping[int, int] | None = None,
    previous: Sequence[Condition] = (),
    now: datetime = T0,
) -> DockerHostStatus:
    return host_status(
        generation=generation,
        answered=answered,
        problem=problem,
        facts=facts,
        capacity=capacity,
        allocated=allocated,
        workspaces=workspaces,
        by_tier=by_tier or {},
        previous=previous,
        now=now,
    )


def ready(result: DockerHostStatus) -> Condition:
    (condition,) = [c for c in result.conditions if c.type == "Ready"]
    return condition


# --- the Ready condition ----------------------------------------------------------------------------------


def test_a_host_not_asked_yet_is_ready_unknown_and_connecting() -> None:
    condition = ready(status(answered=None, facts=None, capacity=None))
    assert (condition.status, condition.reason) == ("Unknown", CONNECTING)
    assert condition.reason == "Connecting"
    assert condition.message == "the daemon has not been asked yet"


def test_a_host_whose_daemon_answers_is_ready_and_reachable_naming_its_engine_version() -> None:
    condition = ready(status(answered=True))
    assert (condition.status, condition.reason) == ("True", REACHABLE)
    assert condition.reason == "Reachable"
    assert condition.message == "Docker Engine 27.3.1 answers"


def test_a_daemon_that_answers_without_a_version_is_still_reachable() -> None:
    condition = ready(status(answered=True, facts=HostFacts(cpus=2, memory_bytes=MIB)))
    assert (condition.status, condition.reason) == ("True", "Reachable")
    assert condition.message == "Docker Engine unknown answers"


def test_a_host_whose_daemon_does_not_answer_is_unreachable_with_the_problem_as_message() -> None:
    problem = "the Docker daemon is not answering: connection refused"
    condition = ready(status(answered=False, problem=problem))
    assert (condition.status, condition.reason) == ("False", UNREACHABLE)
    assert condition.reason == "Unreachable"
    assert condition.message == problem


def test_an_unreachable_host_without_a_problem_message_still_says_something() -> None:
    condition = ready(status(answered=False, problem=""))
    assert condition.status == "False"
    assert condition.message == "the daemon does not answer"


def test_the_ready_condition_is_stamped_with_now_and_the_generation() -> None:
    result = status(generation=7, now=T0)
    assert ready(result).last_transition_time == "2026-01-01T12:00:00Z"
    assert ready(result).observed_generation == 7
    assert result.observed_generation == 7


def test_last_transition_time_is_kept_while_the_status_holds() -> None:
    first = status(answered=True, now=T0)
    second = status(answered=True, now=T1, previous=first.conditions)
    assert ready(second).last_transition_time == "2026-01-01T12:00:00Z"
    # Nothing changed: the whole status is the same, so nothing needs writing.
    assert second.to_dict() == first.to_dict()


def test_last_transition_time_is_kept_when_only_the_message_changes() -> None:
    first = status(answered=False, problem="connection refused", now=T0)
    second = status(answered=False, problem="i/o timeout", now=T1, previous=first.conditions)
    assert ready(second).last_transition_time == "2026-01-01T12:00:00Z"
    assert ready(second).message == "i/o timeout"


def test_last_transition_time_moves_when_the_host_stops_answering() -> None:
    first = status(answered=True, now=T0)
    second = status(answered=False, problem="gone", now=T1, previous=first.conditions)
    assert ready(second).status == "False"
    assert ready(second).last_transition_time == "2026-01-01T12:05:00Z"


def test_last_transition_time_moves_from_connecting_to_reachable() -> None:
    first = status(answered=None, facts=None, capacity=None, now=T0)
    second = status(answered=True, now=T1, previous=first.conditions)
    assert ready(second).last_transition_time == "2026-01-01T12:05:00Z"


def test_other_previous_conditions_are_kept_and_ready_is_replaced_not_duplicated() -> None:
    other = Condition(type="Other", status="True", reason="Kept", message="", last_transition_time="x")
    first = status(answered=True, now=T0, previous=(other,))
    second = status(answered=False, now=T1, previous=first.conditions)
    assert [c.type for c in second.conditions] == ["Other", "Ready"]
    assert second.conditions[0] == other


def test_no_generation_leaves_observed_generation_out() -> None:
    body = status(generation=None).to_dict()
    assert "observedGeneration" not in body
    assert "observedGeneration" not in body["conditions"][0]


# --- info ----------------------------------------------------------------------------------------------


def test_info_is_what_docker_info_said() -> None:
    body = status(facts=FACTS).to_dict()
    assert body["info"] == {
        "serverVersion": "27.3.1",
        "apiVersion": "1.47",
        "operatingSystem": "Ubuntu 24.04",
        "architecture": "x86_64",
        "cpus": 8,
        "memoryBytes": 16 * 1024 * MIB,
    }


def test_empty_facts_are_left_out_of_info() -> None:
    body = status(facts=HostFacts(cpus=2, memory_bytes=MIB)).to_dict()
    assert body["info"] == {"cpus": 2, "memoryBytes": MIB}


def test_no_facts_no_info() -> None:
    body = status(answered=None, facts=None, capacity=None).to_dict()
    assert "info" not in body
    assert "capacity" not in body


# --- capacity ------------------------------------------------------------------------------------------


def test_capacity_is_what_the_daemon_reports_with_memory_in_mib() -> None:
    assert capacity_of(FACTS, None, None) == Resources(8.0, 16384)


def test_capacity_memory_is_rounded_down_to_whole_mib() -> None:
    facts = HostFacts(cpus=2, memory_bytes=3 * MIB + MIB // 2)
    assert capacity_of(facts, None, None) == Resources(2.0, 3)


def test_both_overrides_replace_what_the_daemon_reports() -> None:
    assert capacity_of(FACTS, 2.5, 1024) == Resources(2.5, 1024)


def test_a_cpu_override_alone_keeps_the_daemons_memory() -> None:
    assert capacity_of(FACTS, 2.5, None) == Resources(2.5, 16384)


def test_a_memory_override_alone_keeps_the_daemons_cpus() -> None:
    assert capacity_of(FACTS, None, 1024) == Resources(8.0, 1024)


def test_both_overrides_give_a_capacity_before_the_daemon_ever_answered() -> None:
    assert capacity_of(None, 1.5, 512) == Resources(1.5, 512)


@pytest.mark.parametrize(
    ("facts", "cpus", "memory"),
    [
        (None, None, None),
        (None, 2.0, None),
        (None, None, 1024),
        (HostFacts(cpus=0, memory_bytes=8 * MIB), None, None),
        (HostFacts(cpus=4, memory_bytes=0), None, None),
        (HostFacts(cpus=0, memory_bytes=0), None, 1024),
    ],
)
def test_capacity_is_unknown_while_either_resource_is(
    facts: HostFacts | None, cpus: float | None, memory: int | None
) -> None:
    assert capacity_of(facts, cpus, memory) is None


def test_capacity_is_written_in_cpus_and_mib() -> None:
    body = status(capacity=Resources(2.5, 1024)).to_dict()
    assert body["capacity"] == {"cpus": 2.5, "memoryMiB": 1024}


# --- allocated -----------------------------------------------------------------------------------------


def test_allocated_sums_what_is_placed_and_counts_it_by_tier() -> None:
    body = status(allocated=Resources(1.5, 768), workspaces=2, by_tier={1: 1, 2: 1}).to_dict()
    assert body["allocated"] == {
        "cpus": 1.5,
        "memoryMiB": 768,
        "workspaces": 2,
        "byTier": {"1": 1, "2": 1, "3": 0, "4": 0},
    }


def test_an_empty_host_lists_every_tier_with_zero() -> None:
    # Written as a merge patch: a tier left out would keep its old count forever.
    body = status(allocated=Resources(), workspaces=0, by_tier={}).to_dict()
    assert body["allocated"] == {
        "cpus": 0.0,
        "memoryMiB": 0,
        "workspaces": 0,
        "byTier": {"1": 0, "2": 0, "3": 0, "4": 0},
    }


def test_by_tier_lists_every_tier_whatever_is_placed() -> None:
    for by_tier in ({}, {4: 1}, {1: 3, 3: 2}, {1: 1, 2: 1, 3: 1, 4: 1}):
        listed = status(by_tier=by_tier).to_dict()["allocated"]["byTier"]
        assert set(listed) == {"1", "2", "3", "4"}
        assert listed == {str(tier): by_tier.get(tier, 0) for tier in (1, 2, 3, 4)}


def test_allocated_cpus_are_rounded_so_sums_of_fractions_do_not_churn_the_status() -> None:
    # 0.1 + 0.2 != 0.3 in floating point.
    body = status(allocated=Resources(0.1 + 0.2, 0)).to_dict()
    assert body["allocated"]["cpus"] == 0.3


# --- shape -------------------------------------------------------------------------------------------


def test_the_status_is_written_with_the_crds_camel_case_keys() -> None:
    body: dict[str, Any] = status(
        generation=2, allocated=Resources(0.5, 256), workspaces=1, by_tier={1: 1}
    ).to_dict()
    assert set(body) == {"observedGeneration", "conditions", "info", "capacity", "allocated"}
    assert set(body["conditions"][0]) == {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    }
    assert set(body["info"]) == {
        "serverVersion",
        "apiVersion",
        "operatingSystem",
        "architecture",
        "cpus",
        "memoryBytes",
    }
    assert set(body["capacity"]) == {"cpus", "memoryMiB"}
    assert set(body["allocated"]) == {"cpus", "memoryMiB", "workspaces", "byTier"}


def test_the_written_status_reads_back_as_the_same_status() -> None:
    original = status(allocated=Resources(1.0, 512), workspaces=1, by_tier={2: 1})
    assert DockerHostStatus.model_validate(original.to_dict()) == original


def test_the_runtimes_the_daemon_offers_are_shown() -> None:
    facts = HostFacts(cpus=2, memory_bytes=MIB, runtimes=("runc", "runsc"))
    assert status(facts=facts).to_dict()["info"]["runtimes"] == ["runc", "runsc"]
