"""A DockerHost's status, from what its daemon last said and what is placed there: a pure function.

`Ready` is True while the daemon answers (reason `Reachable`), False when it does not (`Unreachable`, with
what went wrong); like every condition it keeps its lastTransitionTime while its status holds, so a host
that keeps answering produces the same status (and no write) pass after pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from controller.api.dockerhost import DockerHostStatus, HostAllocation, HostInfo, HostResources
from controller.api.workspace import Condition
from controller.core.conditions import ConditionUpdate, set_condition
from controller.core.placement import Resources
from controller.core.tiers import DEFAULT_TIER_LIMITS
from controller.port.values import HostFacts

MIB = 1024 * 1024
REACHABLE = "Reachable"
UNREACHABLE = "Unreachable"
CONNECTING = "Connecting"


def capacity_of(
    facts: HostFacts | None, cpus_override: float | None, memory_override_mib: int | None
) -> Resources | None:
    """What placement may fill: each override where given, else what the daemon reports; None while
    neither is known."""
    cpus = cpus_override if cpus_override is not None else (facts.cpus if facts and facts.cpus else None)
    memory = (
        memory_override_mib
        if memory_override_mib is not None
        else (facts.memory_bytes // MIB if facts and facts.memory_bytes else None)
    )
    if cpus is None or memory is None:
        return None
    return Resources(float(cpus), int(memory))


def host_status(
    *,
    generation: int | None,
    answered: bool | None,
    problem: str,
    facts: HostFacts | None,
    capacity: Resources | None,
    allocated: Resources,
    workspaces: int,
    by_tier: Mapping[int, int],
    previous: Sequence[Condition],
    now: datetime,
) -> DockerHostStatus:
    """`answered` None: not asked yet (Ready Unknown)."""
    if answered is None:
        update = ConditionUpdate("Ready", "Unknown", CONNECTING, "the daemon has not been asked yet")
    elif answered:
        version = facts.server_version if facts and facts.server_version else "unknown"
        update = ConditionUpdate("Ready", "True", REACHABLE, f"Docker Engine {version} answers")
    else:
        update = ConditionUpdate("Ready", "False", UNREACHABLE, problem or "the daemon does not answer")
    stamped = ConditionUpdate(update.type, update.status, update.reason, update.message, generation)
    conditions = set_condition(previous, stamped, now)
    info = None
    if facts is not None:
        info = HostInfo(
            server_version=facts.server_version or None,
            api_version=facts.api_version or None,
            operating_system=facts.operating_system or None,
            architecture=facts.architecture or None,
            cpus=facts.cpus,
            memory_bytes=facts.memory_bytes,
            runtimes=facts.runtimes[:32] or None,
        )
    return DockerHostStatus(
        observed_generation=generation,
        conditions=tuple(conditions),
        info=info,
        capacity=HostResources(cpus=capacity.cpus, memory_mib=capacity.memory_mib) if capacity else None,
        allocated=HostAllocation(
            cpus=round(allocated.cpus, 3),
            memory_mib=allocated.memory_mib,
            workspaces=workspaces,
            # Every tier, zeros included: the status is written as a merge patch, which cannot drop a key
            # by leaving it out.
            by_tier={str(tier): by_tier.get(tier, 0) for tier in sorted({*DEFAULT_TIER_LIMITS, *by_tier})},
        ),
    )
