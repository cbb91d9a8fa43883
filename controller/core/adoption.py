"""Whether a volume found under a Workspace's name may be used: its own, one it may take over, or not.

A volume Docker already had when the controller asked for it comes back with the labels it was made with
(Docker never relabels a volume). One labelled for this Workspace is its own. One this controller made
for another Workspace is never used while that Workspace exists: two agents must not share state. Once
it is gone, a volume it retained (deletionPolicy Retain) may be taken over with spec.adopt, as a
Workspace re-created for the same platform ID does.

One without this controller instance's label depends on whose name it has. A name made from the
Workspace's uid is nobody else's to make: such a volume is one of its own that lost its labels (a daemon
killed while creating it keeps the directory, not the metadata), used as before. A name made from the
platform's ID is also the Go provisioner's: the volume holds someone's data and is used only when the
Workspace asks to take it over (spec.adopt) or took it over before (status.adopted).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Literal

from controller.core import labels
from controller.core.causes import Cause, Reason
from controller.core.identity import WorkspaceRef

VolumeVerdict = Literal["own", "adopt"]


def volume_verdict(
    name: str,
    found: Mapping[str, str],
    *,
    instance: str,
    workspace: WorkspaceRef,
    adopt: bool,
    adopted: Collection[str],
    platform_named: bool,
    exists: Callable[[str], bool] = lambda _: True,
) -> VolumeVerdict | Cause:
    """What to do with the volume `name` whose labels are `found` (the adapter's answer to "ensure");
    `platform_named`: the names come from spec.workspaceID, not the uid; `exists(uid)`: whether a
    Workspace with that uid exists (when in doubt, it does)."""
    if labels.owns(found, instance, workspace):
        return "own"
    owner = labels.read_owner(found, instance)
    if labels.INSTANCE_LABEL not in found and not platform_named:
        return "own"
    if labels.INSTANCE_LABEL not in found:
        if adopt or name in adopted:
            return "adopt"
        maker = (
            "the Go provisioner"
            if labels.made_by_go_provisioner(found)
            else "someone else (it has no labels of ours)"
        )
        return Cause(
            Reason.VOLUME_CONFLICT,
            f"volume {name} exists, made by {maker}; set spec.adopt: true to use it as it is "
            "(its data is kept), or remove it",
        )
    if owner is None:
        return Cause(
            Reason.VOLUME_CONFLICT,
            f"volume {name} belongs to another controller or Workspace; it is never shared: remove it",
        )
    # A slot's (`core.pools`): its uid label is the slot's ID, which an annotation can name; never taken.
    retained = (
        found.get(labels.DELETION_POLICY_LABEL) == "Retain"
        and labels.SLOT_LABEL not in found
        and not exists(owner.uid)
    )
    if retained and (adopt or name in adopted):
        return "adopt"
    if retained:
        return Cause(
            Reason.VOLUME_CONFLICT,
            f"volume {name} was retained by Workspace {owner}, which is gone; set spec.adopt: true to "
            "take it over with its data, or remove it",
        )
    return Cause(
        Reason.VOLUME_CONFLICT,
        f"volume {name} belongs to Workspace {owner} (uid {owner.uid}); it is never shared",
    )
