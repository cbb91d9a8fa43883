"""Which labeled Docker objects are orphans: a pure decision, so every safety rule is unit-tested.

The model is Nomad's dangling-container reaper: only objects carrying both the Go provisioner's managed
label and this controller instance's label are candidates; anything younger than a creation grace is left
(Docker can create a container while the create call reports an error); and volumes go only with an
orphaned container whose deletion-policy label says Delete. A volume with no container left is either
retained on purpose (deletionPolicy Retain, released by removing it by hand) or could belong to a
Workspace whose policy changed after the volume was made: it is never guessed at.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from controller.core import labels


@dataclass(frozen=True)
class Candidate:
    """A container or volume as listed: name, labels, creation time (epoch seconds, None if unknown)."""

    name: str
    labels: Mapping[str, str]
    created: float | None
    id: str = ""


@dataclass(frozen=True)
class Skip:
    name: str
    reason: str  # not-ours | no-owner-label | within-grace | retained | no-container


@dataclass(frozen=True)
class SweepPlan:
    containers: tuple[Candidate, ...] = ()
    volumes: tuple[Candidate, ...] = ()
    skipped: tuple[Skip, ...] = field(default=())


def _orphan_uid(
    candidate: Candidate, instance: str, live_uids: Collection[str], now: float, grace: float
) -> str | Skip | None:
    """The orphan's Workspace uid; a Skip saying why not; None when its Workspace exists."""
    if not labels.is_owned_by(candidate.labels, instance):
        return Skip(candidate.name, "not-ours")
    uid = candidate.labels.get(labels.UID_LABEL)
    # The namespace too: a sweep under namespaced RBAC lists the Workspaces of the namespaces named here.
    if not uid or not candidate.labels.get(labels.NAMESPACE_LABEL):
        return Skip(candidate.name, "no-owner-label")
    if uid in live_uids:
        return None
    if candidate.created is None or now - candidate.created < grace:
        return Skip(candidate.name, "within-grace")
    return uid


def plan_sweep(
    containers: Collection[Candidate],
    volumes: Collection[Candidate],
    *,
    instance: str,
    live_uids: Collection[str],
    now: float,
    grace: float,
    earlier_policies: Mapping[str, str] | None = None,
) -> SweepPlan:
    """What to remove and what to leave (and why).

    ``earlier_policies`` are the deletion policies of orphans whose container an earlier pass removed, so a
    volume whose removal failed then is retried. A volume goes only when both its orphaned container's
    label and its own label say Delete: a policy changed to Retain after the volume was made keeps it.
    """
    remove_containers: list[Candidate] = []
    skipped: list[Skip] = []
    policy_by_uid: dict[str, str] = dict(earlier_policies or {})
    for container in containers:
        verdict = _orphan_uid(container, instance, live_uids, now, grace)
        if isinstance(verdict, Skip):
            skipped.append(verdict)
        elif verdict is not None:
            remove_containers.append(container)
            policy_by_uid[verdict] = container.labels.get(labels.DELETION_POLICY_LABEL, "Retain")

    remove_volumes: list[Candidate] = []
    for volume in volumes:
        verdict = _orphan_uid(volume, instance, live_uids, now, grace)
        if isinstance(verdict, Skip):
            skipped.append(verdict)
        elif verdict is not None:
            policy = policy_by_uid.get(verdict)
            if policy is None:
                skipped.append(Skip(volume.name, "no-container"))
            elif policy != "Delete" or volume.labels.get(labels.DELETION_POLICY_LABEL) != "Delete":
                skipped.append(Skip(volume.name, "retained"))
            else:
                remove_volumes.append(volume)
    return SweepPlan(tuple(remove_containers), tuple(remove_volumes), tuple(skipped))


def orphaned_networks(
    networks: Mapping[str, Mapping[str, str]], *, instance: str, live_uids: Collection[str]
) -> list[str]:
    """The networks (name -> labels) of this instance whose Workspace no longer exists (isolated
    agents' internal networks); one without an owner label is never one."""
    return sorted(
        name
        for name, found in networks.items()
        if labels.is_owned_by(found, instance)
        and (uid := found.get(labels.UID_LABEL))
        and found.get(labels.NAMESPACE_LABEL)
        and uid not in live_uids
    )
