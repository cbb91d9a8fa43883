"""Docker labels that mark what this controller owns, and reading them back.

``molecule.platform.managed=true`` is the Go provisioner's label, kept so existing tooling still recognises
the objects. The Go provisioner had no instance label, so two platforms on one daemon reaped each other's
containers; the ``molecule.ai/controller-instance`` label scopes every list, sweep and delete to one
controller instance.
"""

from __future__ import annotations

from collections.abc import Mapping

from controller.core.identity import WorkspaceRef

MANAGED_LABEL = "molecule.platform.managed"
MANAGED_VALUE = "true"
INSTANCE_LABEL = "molecule.ai/controller-instance"
UID_LABEL = "molecule.ai/workspace-uid"
NAMESPACE_LABEL = "molecule.ai/workspace-namespace"
NAME_LABEL = "molecule.ai/workspace-name"
CONFIG_HASH_LABEL = "molecule.ai/config-hash"
HOST_LABEL = "molecule.ai/docker-host"
"""The DockerHost a container was placed on (containers only; set when it is created)."""
# The Workspace's deletionPolicy, for the orphan sweep: a Workspace that vanished without its finalizer
# running leaves only these labels to say whether its volumes may go.
DELETION_POLICY_LABEL = "molecule.ai/deletion-policy"
SLOT_LABEL = "molecule.ai/pool-slot"
"""On the objects of a warm pool slot (`core.pools`), and of the Workspace bound to it since: the slot's
ID, which is also their uid label. The objects of a slot not yet bound name its WorkspacePool in their
name label."""


def workspace_labels(instance: str, workspace: WorkspaceRef, deletion_policy: str) -> dict[str, str]:
    """Labels on every object of a workspace (container and volumes)."""
    made = {
        MANAGED_LABEL: MANAGED_VALUE,
        INSTANCE_LABEL: instance,
        UID_LABEL: workspace.owner_uid,
        NAMESPACE_LABEL: workspace.namespace,
        NAME_LABEL: workspace.name,
        DELETION_POLICY_LABEL: deletion_policy,
    }
    if workspace.slot:
        made[SLOT_LABEL] = workspace.slot
    return made


def with_config_hash(labels: Mapping[str, str], config_hash: str) -> dict[str, str]:
    """A container's labels: its workspace's, plus the hash of the configuration it was created from."""
    return {**labels, CONFIG_HASH_LABEL: config_hash}


ROLE_LABEL = "molecule.ai/role"
"""What a container other than the agent is for (`gateway`: an isolated agent's)."""
CONTAINER_ONLY_LABELS = (CONFIG_HASH_LABEL, HOST_LABEL, ROLE_LABEL)
"""Labels a container carries beyond its workspace's (its configuration, host and role)."""


def workspace_labels_of(container_labels: Mapping[str, str]) -> dict[str, str]:
    """A container's labels without what only containers carry: its workspace's, for the objects made
    beside it (an isolated agent's network)."""
    return {k: v for k, v in container_labels.items() if k not in CONTAINER_ONLY_LABELS}


def owned(instance: str) -> dict[str, str]:
    """The labels selecting everything this controller instance owns (a label selector)."""
    return {MANAGED_LABEL: MANAGED_VALUE, INSTANCE_LABEL: instance}


def owned_by_workspace(instance: str, uid: str) -> dict[str, str]:
    """The labels selecting everything of one Workspace, whatever its name (a rename by hand included)."""
    return {**owned(instance), UID_LABEL: uid}


def owned_by(instance: str, workspace: WorkspaceRef) -> dict[str, str]:
    """The labels selecting everything of `workspace` (as `owns` judges it): a slot's objects by its
    slot and namespace labels too."""
    selector = owned_by_workspace(instance, workspace.owner_uid)
    if workspace.slot:
        selector.update({NAMESPACE_LABEL: workspace.namespace, SLOT_LABEL: workspace.slot})
    return selector


def is_owned_by(labels: Mapping[str, str] | None, instance: str) -> bool:
    labels = labels or {}
    return labels.get(MANAGED_LABEL) == MANAGED_VALUE and labels.get(INSTANCE_LABEL) == instance


def made_by_go_provisioner(labels: Mapping[str, str] | None) -> bool:
    """The Go provisioner's mark: its managed label and no controller instance (it had none)."""
    labels = labels or {}
    return labels.get(MANAGED_LABEL) == MANAGED_VALUE and INSTANCE_LABEL not in labels


def read_owner(labels: Mapping[str, str] | None, instance: str) -> WorkspaceRef | None:
    """The owning Workspace, or None when the object is not this instance's or its labels are incomplete."""
    labels = labels or {}
    if not is_owned_by(labels, instance):
        return None
    uid, namespace, name = labels.get(UID_LABEL), labels.get(NAMESPACE_LABEL), labels.get(NAME_LABEL)
    if not uid or not namespace or not name:
        return None
    return WorkspaceRef(uid=uid, namespace=namespace, name=name)


def owns(labels: Mapping[str, str] | None, instance: str, workspace: WorkspaceRef) -> bool:
    """Whether an object with these labels is `workspace`'s: this instance's, with its owner uid. A slot's
    objects (a bound Workspace's uid label is its slot's ID, which it names in an annotation) are its only
    when they carry the slot label and are of its namespace: an annotation written by hand never reaches
    another namespace's objects, nor any object not made for a slot."""
    owner = read_owner(labels, instance)
    if owner is None or owner.uid != workspace.owner_uid:
        return False
    if not workspace.slot:
        return True
    return owner.namespace == workspace.namespace and (labels or {}).get(SLOT_LABEL) == workspace.slot


def read_config_hash(labels: Mapping[str, str] | None) -> str | None:
    value = (labels or {}).get(CONFIG_HASH_LABEL)
    return value or None
