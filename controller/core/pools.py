"""Warm pools: which warm slots a WorkspacePool keeps, and which one a new Workspace may be bound to.

A slot is a container made exactly as a Workspace of the pool's template would be made if its workspace
ID were the slot's own (a fresh UUID): ``ws-<slot12>`` with its volumes, WORKSPACE_ID the slot's ID,
the template's image, env, files and limits. Until a Workspace takes it, it is named ``ws-<slot12>-warm``
and its labels name the pool (name label) and the slot (slot label, also its uid label).

A Workspace is bound to a slot when the container its own spec makes, under the slot's identity, is the
slot's container: the same config hash. So nothing is listed by hand as "what can be applied to a
running agent": anything that would change the container (an override of the template, another
deletionPolicy, a platform workspaceID) makes a cold create instead. What the binding applies to the
running agent: its identity (the Workspace takes the slot's ID: status.workspaceID, the container's
name, WORKSPACE_ID) and the generated auth token, written into /configs/.auth_token at the binding (it
is written only when absent, so it is not in the hash). The agent must read the token file when it
uses it, not once at start.

The binding is recorded on the Workspace as the annotation ``molecule.ai/pool-slot`` (and its
status.workspaceID): either one brings it back when the other is lost.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from controller.core import labels, naming
from controller.core.identity import WorkspaceRef

SLOT_ANNOTATION = "molecule.ai/pool-slot"
NOT_POOLED_ISOLATED = (
    "the template isolates its agents (spec.network): an isolated agent has a gateway of its own and is "
    "not kept warm; its Workspaces are made when asked for"
)
NOT_POOLED_TOKEN = (
    "the template's authToken names a Secret, whose token is part of the container's configuration: "
    "its Workspaces are made when asked for"
)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def valid_slot_id(value: object) -> bool:
    return isinstance(value, str) and _UUID.match(value) is not None


def bound_slot(
    annotations: Mapping[str, Any], status: Mapping[str, Any], *, uid: str, platform_id: str
) -> str:
    """The slot a Workspace is bound to ("" when none): its annotation, else the ID its status records
    when that is a slot's (an ID that is neither its uid nor the platform's). A Workspace with the
    platform's ID is never bound (its names are the platform's)."""
    if platform_id:
        return ""
    marked = annotations.get(SLOT_ANNOTATION)
    if valid_slot_id(marked):
        return str(marked)
    recorded = status.get("workspaceID")
    if valid_slot_id(recorded) and recorded != uid:
        return str(recorded)
    return ""


def confirmed(workspace: WorkspaceRef, status: Mapping[str, Any], remembered: str) -> bool:
    """Whether a Workspace's binding is known to be the controller's: its status records the slot (only
    the controller writes the status), or this controller bound it (`remembered`). An annotation alone
    may have been written by hand; it then holds only where the slot's container is found, of the
    Workspace's namespace (`unbound_message` otherwise)."""
    return not workspace.slot or workspace.slot in (status.get("workspaceID"), remembered)


def unbound_message(slot: str, namespace: str) -> str:
    return (
        f"the annotation {SLOT_ANNOTATION} names slot {slot}, which this Workspace was not bound to (no "
        f"container of that slot is in namespace {namespace}): remove the annotation; the controller "
        "writes it when it binds a Workspace to a warm slot"
    )


def slot_ref(namespace: str, pool: str, slot: str) -> WorkspaceRef:
    """The identity a slot is made under: its own ID for uid, workspace ID and slot; its pool's name."""
    return WorkspaceRef(uid=slot, namespace=namespace, name=pool, slot=slot)


def bound_ref(workspace: WorkspaceRef, slot: str) -> WorkspaceRef:
    return WorkspaceRef(workspace.uid, workspace.namespace, workspace.name, slot=slot)


def may_claim(spec: Mapping[str, Any], status: Mapping[str, Any], workspace: WorkspaceRef) -> bool:
    """Whether a Workspace may be bound to a warm slot: one that names a template, has no identity of
    its own yet (no platform ID, not bound, nothing made: its status records no workspace ID), and is
    neither adopting the Go provisioner's objects nor suspended."""
    template = spec.get("templateRef")
    return (
        isinstance(template, Mapping)
        and bool(template.get("name"))
        and not workspace.platform_id
        and not workspace.slot
        and not status.get("workspaceID")
        and spec.get("adopt") is not True
        and spec.get("suspend") is not True
    )


@dataclass(frozen=True)
class Slot:
    """A warm slot as Docker lists it."""

    id: str
    namespace: str
    pool: str
    host: str
    container_id: str
    config_hash: str | None
    ready: bool
    created: float


def warm_slots(
    listed: Iterable[tuple[str, str, str, Mapping[str, str], bool, float]], *, instance: str, host: str
) -> list[Slot]:
    """The unbound slots among containers (name, id, state, labels, ready, created) of one host."""
    found = []
    for name, container_id, _state, found_labels, ready, created in listed:
        slot = found_labels.get(labels.SLOT_LABEL, "")
        owner = labels.read_owner(found_labels, instance)
        if not valid_slot_id(slot) or owner is None or owner.uid != slot:
            continue
        if name != naming.warm_name(slot):
            continue  # bound (renamed), or not a slot's main container
        found.append(
            Slot(
                id=slot,
                namespace=owner.namespace,
                pool=owner.name,
                host=host,
                container_id=container_id,
                config_hash=labels.read_config_hash(found_labels),
                ready=ready,
                created=created,
            )
        )
    return found


@dataclass(frozen=True)
class PoolStep:
    """What a pool pass does: slots to make, and slots to remove (and why)."""

    create: int
    remove: tuple[tuple[Slot, str], ...] = ()


def pool_step(
    slots: Collection[Slot],
    *,
    replicas: int,
    current: bool,
    stale: Collection[str] = (),
    excluded: Collection[str] = (),
) -> PoolStep:
    """Keep `replicas` slots made from the pool's template as it is now. A `stale` slot (made from an
    older template, or never Ready) goes; so do any beyond `replicas`, not-Ready ones first, then the
    youngest. `current`: whether the template can be made into a container now (when it cannot, nothing
    is made and only the slots beyond the size go). `excluded`: slots being bound (never removed)."""
    remove: list[tuple[Slot, str]] = []
    keep: list[Slot] = []
    for slot in slots:
        if slot.id in excluded:
            continue
        if current and slot.id in stale:
            remove.append((slot, "made from an older template, or never Ready"))
        else:
            keep.append(slot)
    keep.sort(key=lambda s: (not s.ready, s.created))  # the best to keep first
    while len(keep) > replicas:
        remove.append((keep.pop(), "beyond the pool's size"))
    return PoolStep(create=max(0, replicas - len(keep)) if current else 0, remove=tuple(remove))


def pick(
    slots: Iterable[Slot], *, namespace: str, pool_names: Collection[str], taken: Collection[str]
) -> list[Slot]:
    """Ready, unbound slots of the pools `pool_names` of `namespace`, oldest first: the candidates."""
    return sorted(
        (
            s
            for s in slots
            if s.ready and s.namespace == namespace and s.pool in pool_names and s.id not in taken
        ),
        key=lambda s: s.created,
    )


def live_owner_uids(
    workspaces: Iterable[Mapping[str, Any]], containers: Iterable[tuple[str, Mapping[str, str]]]
) -> set[str]:
    """The uid labels the orphan sweep must leave: every Workspace's uid and the slot it is bound to,
    and every unbound warm slot (its pool's manager keeps or removes it). `containers`: (name, labels)."""
    live: set[str] = set()
    for body in workspaces:
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        spec = body.get("spec") or {}
        given = spec.get("workspaceID")
        live.add(uid)
        slot = bound_slot(
            meta.get("annotations") or {},
            body.get("status") or {},
            uid=uid,
            platform_id=given if isinstance(given, str) else "",
        )
        if slot:
            live.add(slot)
    for name, found in containers:
        slot = found.get(labels.SLOT_LABEL, "")
        if valid_slot_id(slot) and name == naming.warm_name(slot):
            live.add(slot)
    return live
