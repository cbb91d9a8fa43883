"""Ownership labels: written on every object, read back to find the owner."""

from __future__ import annotations

from controller.core.identity import WorkspaceRef
from controller.core.labels import (
    CONFIG_HASH_LABEL,
    INSTANCE_LABEL,
    MANAGED_LABEL,
    is_owned_by,
    owned,
    owned_by_workspace,
    read_config_hash,
    read_owner,
    with_config_hash,
    workspace_labels,
)

ALICE = WorkspaceRef(uid="uid-1", namespace="team-a", name="alice")


def test_workspace_labels_carry_the_legacy_managed_label_instance_owner_and_deletion_policy() -> None:
    assert workspace_labels("prod", ALICE, "Retain") == {
        "molecule.platform.managed": "true",
        "molecule.ai/controller-instance": "prod",
        "molecule.ai/workspace-uid": "uid-1",
        "molecule.ai/workspace-namespace": "team-a",
        "molecule.ai/workspace-name": "alice",
        "molecule.ai/deletion-policy": "Retain",
    }


def test_container_labels_add_the_config_hash() -> None:
    base = workspace_labels("prod", ALICE, "Delete")
    labels = with_config_hash(base, "abc")
    assert labels[CONFIG_HASH_LABEL] == "abc"
    assert read_config_hash(labels) == "abc"
    assert {k: v for k, v in labels.items() if k != CONFIG_HASH_LABEL} == base
    assert CONFIG_HASH_LABEL not in base


def test_read_owner_returns_the_workspace_for_this_instance_only() -> None:
    labels = workspace_labels("prod", ALICE, "Retain")
    assert read_owner(labels, "prod") == WorkspaceRef(uid="uid-1", namespace="team-a", name="alice")
    assert read_owner(labels, "staging") is None


def test_legacy_labeled_objects_without_instance_are_not_ours() -> None:
    # A Go-provisioner platform (or another controller) on the same daemon must never be swept by this one.
    assert not is_owned_by({MANAGED_LABEL: "true"}, "default")
    assert read_owner({MANAGED_LABEL: "true"}, "default") is None


def test_incomplete_or_missing_labels_have_no_owner() -> None:
    assert read_owner(None, "prod") is None
    assert read_owner({MANAGED_LABEL: "true", INSTANCE_LABEL: "prod"}, "prod") is None
    assert read_config_hash(None) is None
    assert read_config_hash({CONFIG_HASH_LABEL: ""}) is None


def test_what_an_instance_owns_is_selected_by_both_the_managed_and_the_instance_label() -> None:
    assert owned("prod") == {"molecule.platform.managed": "true", "molecule.ai/controller-instance": "prod"}


def test_what_one_workspace_owns_is_selected_by_its_uid_within_the_instance() -> None:
    assert owned_by_workspace("prod", "uid-1") == {
        "molecule.platform.managed": "true",
        "molecule.ai/controller-instance": "prod",
        "molecule.ai/workspace-uid": "uid-1",
    }
