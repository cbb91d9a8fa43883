"""Warm pools: which slots a pool keeps, which a Workspace may take, and whose objects they are."""

from __future__ import annotations

import dataclasses
import uuid

from controller.api.workspace import WorkspaceSpec
from controller.core import labels, naming
from controller.core.causes import Cause
from controller.core.identity import WorkspaceRef
from controller.core.plan import plan_workspace
from controller.core.pools import (
    SLOT_ANNOTATION,
    Slot,
    bound_ref,
    bound_slot,
    live_owner_uids,
    may_claim,
    pick,
    pool_step,
    slot_ref,
    warm_slots,
)
from tests.support.plans import INPUTS, SETTINGS, spec_for

INSTANCE = "test"
UID = "0b9e6d1c-1111-4222-8333-944455556666"
SLOT = "5f0c2b1a-aaaa-4bbb-8ccc-dddddddddddd"


def slot(n: int, *, ready: bool = True, created: float = 0.0, pool: str = "p", ns: str = "team") -> Slot:
    return Slot(f"{n:08d}-0000-4000-8000-000000000000", ns, pool, "local", f"c{n}", f"h{n}", ready, created)


def test_a_slot_and_the_workspace_bound_to_it_share_names_and_owner_uid() -> None:
    warm = slot_ref("team", "pool", SLOT)
    bound = bound_ref(WorkspaceRef(UID, "team", "alice"), SLOT)
    assert warm.workspace_id == bound.workspace_id == SLOT
    assert warm.owner_uid == bound.owner_uid == SLOT
    assert bound.uid == UID  # Kubernetes calls keep the Workspace's own uid
    assert naming.container_name(SLOT) == "ws-5f0c2b1a-aaa"
    assert naming.warm_name(SLOT) == "ws-5f0c2b1a-aaa-warm"


def test_a_bound_workspace_owns_only_its_slots_objects_in_its_namespace() -> None:
    made = labels.workspace_labels(INSTANCE, slot_ref("team", "pool", SLOT), "Delete")
    bound = bound_ref(WorkspaceRef(UID, "team", "alice"), SLOT)
    assert labels.owns(made, INSTANCE, bound)
    # An annotation written by hand in another namespace reaches nothing there.
    assert not labels.owns(made, INSTANCE, bound_ref(WorkspaceRef(UID, "other", "alice"), SLOT))
    # Nor an object not made for a slot (another Workspace's, its uid named in the annotation).
    victim = labels.workspace_labels(INSTANCE, WorkspaceRef(SLOT, "team", "bob"), "Delete")
    assert not labels.owns(victim, INSTANCE, bound)
    assert labels.owned_by(INSTANCE, bound)[labels.NAMESPACE_LABEL] == "team"
    assert labels.owned_by(INSTANCE, bound)[labels.SLOT_LABEL] == SLOT


def test_the_binding_is_read_from_the_annotation_or_else_the_status() -> None:
    assert bound_slot({SLOT_ANNOTATION: SLOT}, {}, uid=UID, platform_id="") == SLOT
    assert bound_slot({}, {"workspaceID": SLOT}, uid=UID, platform_id="") == SLOT
    assert bound_slot({}, {"workspaceID": UID}, uid=UID, platform_id="") == ""
    assert bound_slot({SLOT_ANNOTATION: "not-a-uuid"}, {}, uid=UID, platform_id="") == ""
    assert bound_slot({SLOT_ANNOTATION: SLOT}, {}, uid=UID, platform_id="ws-1") == ""


def test_only_a_new_workspace_of_a_template_may_claim() -> None:
    ref = WorkspaceRef(UID, "team", "alice")
    spec = {"templateRef": {"name": "t"}}
    assert may_claim(spec, {}, ref)
    assert not may_claim({}, {}, ref)
    assert not may_claim(spec, {"workspaceID": UID}, ref)  # has made something already
    assert not may_claim({**spec, "suspend": True}, {}, ref)
    assert not may_claim({**spec, "adopt": True}, {}, ref)
    assert not may_claim(spec, {}, WorkspaceRef(UID, "team", "alice", platform_id="p1"))


def test_a_workspace_plans_the_slots_container_exactly_under_the_slots_identity() -> None:
    """The binding rule: the Workspace's own plan under the slot's identity has the slot's hash (the
    name label, the slot's pool and the Workspace's own name, is the only difference)."""
    inputs = dataclasses.replace(INPUTS, auth_token="the-workspace-token")
    spec = WorkspaceSpec.model_validate(spec_for({"authToken": {"generate": True}}, inputs))
    warm = plan_workspace(
        slot_ref("team", "pool", SLOT), spec, dataclasses.replace(INPUTS, auth_token="x"), SETTINGS
    )
    mine = plan_workspace(bound_ref(WorkspaceRef(UID, "team", "alice"), SLOT), spec, inputs, SETTINGS)
    assert not isinstance(warm, Cause)
    assert not isinstance(mine, Cause)
    assert warm.config_hash == mine.config_hash
    assert mine.name == naming.container_name(SLOT)
    assert f"WORKSPACE_ID={SLOT}" in mine.container.env
    # Anything that changes the container (an override) is another hash: a cold create.
    other = plan_workspace(
        bound_ref(WorkspaceRef(UID, "team", "alice"), SLOT),
        WorkspaceSpec.model_validate(spec_for({"tier": 1, "authToken": {"generate": True}}, inputs)),
        inputs,
        SETTINGS,
    )
    assert not isinstance(other, Cause)
    assert other.config_hash != warm.config_hash
    # A container not made for a slot keeps its name label in its hash, as before.
    a = plan_workspace(WorkspaceRef(UID, "team", "alice"), spec, inputs, SETTINGS)
    b = plan_workspace(WorkspaceRef(UID, "team", "bob"), spec, inputs, SETTINGS)
    assert not isinstance(a, Cause)
    assert not isinstance(b, Cause)
    assert a.config_hash != b.config_hash


def test_warm_slots_are_the_unbound_slot_containers_of_this_instance() -> None:
    made = labels.with_config_hash(
        labels.workspace_labels(INSTANCE, slot_ref("team", "p", SLOT), "Delete"), "h"
    )
    listed = [
        (naming.warm_name(SLOT), "c1", "running", made, True, 5.0),
        (naming.container_name(SLOT), "c2", "running", made, True, 5.0),  # bound (renamed)
        (naming.warm_name(SLOT), "c3", "running", {**made, labels.INSTANCE_LABEL: "other"}, True, 5.0),
    ]
    found = warm_slots(listed, instance=INSTANCE, host="local")
    assert [(s.id, s.container_id, s.pool, s.namespace, s.config_hash) for s in found] == [
        (SLOT, "c1", "p", "team", "h")
    ]


def test_a_pool_makes_what_it_lacks_and_removes_extras_not_ready_and_youngest_first() -> None:
    assert pool_step([], replicas=3, current=True).create == 3
    slots = [slot(1, created=1), slot(2, created=2), slot(3, created=3, ready=False), slot(4, created=4)]
    step = pool_step(slots, replicas=2, current=True)
    assert step.create == 0
    assert sorted(s.container_id for s, _ in step.remove) == ["c3", "c4"]


def test_stale_slots_go_and_are_made_again_but_not_when_the_template_cannot_be_made() -> None:
    slots = [slot(1), slot(2)]
    step = pool_step(slots, replicas=2, current=True, stale={slots[0].id})
    assert [s.container_id for s, _ in step.remove] == ["c1"]
    assert step.create == 1
    held = pool_step(slots, replicas=2, current=False, stale={slots[0].id})
    assert held.remove == ()
    assert held.create == 0


def test_a_slot_being_bound_is_never_removed() -> None:
    slots = [slot(1), slot(2)]
    step = pool_step(slots, replicas=0, current=True, excluded={slots[0].id})
    assert [s.container_id for s, _ in step.remove] == ["c2"]


def test_candidates_are_ready_untaken_slots_of_the_pools_oldest_first() -> None:
    slots = [slot(1, created=9), slot(2, created=1), slot(3, ready=False), slot(4, pool="q"), slot(5, ns="x")]
    chosen = pick(slots, namespace="team", pool_names={"p"}, taken={slots[0].id})
    assert [s.container_id for s in chosen] == ["c2"]


def test_the_sweep_leaves_bound_and_warm_slots() -> None:
    other = str(uuid.uuid4())
    workspaces = [{"metadata": {"uid": UID, "annotations": {SLOT_ANNOTATION: SLOT}}, "spec": {}}]
    warm = {labels.SLOT_LABEL: other}
    live = live_owner_uids(
        workspaces, [(naming.warm_name(other), warm), ("ws-renamed", {labels.SLOT_LABEL: "x"})]
    )
    assert live == {UID, SLOT, other}


def test_a_slots_volume_is_never_taken_by_a_workspace_of_another_namespace() -> None:
    from controller.core.adoption import volume_verdict

    made = labels.workspace_labels(INSTANCE, slot_ref("team", "pool", SLOT), "Retain")
    mine = bound_ref(WorkspaceRef(UID, "team", "alice"), SLOT)
    forged = bound_ref(WorkspaceRef(UID, "other", "mallory"), SLOT)

    def verdict(workspace: WorkspaceRef) -> object:
        found = volume_verdict(
            "v",
            made,
            instance=INSTANCE,
            workspace=workspace,
            adopt=True,
            adopted=(),
            platform_named=False,
            exists=lambda _: False,
        )
        return found if isinstance(found, str) else found.reason

    assert verdict(mine) == "own"
    assert verdict(forged) == "VolumeConflict"  # not adopted, though "retained" by a uid that is gone


def test_a_binding_is_confirmed_by_the_status_or_by_this_controller_not_by_an_annotation_alone() -> None:
    from controller.core.pools import confirmed, unbound_message

    bound = bound_ref(WorkspaceRef(UID, "team", "alice"), SLOT)
    assert confirmed(WorkspaceRef(UID, "team", "alice"), {}, "")  # not bound: nothing to confirm
    assert confirmed(bound, {"workspaceID": SLOT}, "")
    assert confirmed(bound, {}, SLOT)
    assert not confirmed(bound, {}, "")
    assert not confirmed(bound, {"workspaceID": UID}, "")
    assert SLOT_ANNOTATION in unbound_message(SLOT, "team")
    assert "namespace team" in unbound_message(SLOT, "team")
