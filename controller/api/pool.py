"""Agents kept warm for a template: the WorkspacePool resource.

A `WorkspacePool` (namespaced, like the WorkspaceTemplate it names in `spec.templateRef`) keeps
`spec.replicas` warm agent containers ("slots") made from that template, started and Ready, so that a new
Workspace naming the same template is bound to one in well under a second instead of waiting for a
container to be created and its agent to start. A slot taken by a Workspace becomes that Workspace's
container for good, and the pool makes another. `spec.replicas` is the scale subresource's, so
`kubectl scale wspool/<name> --replicas=N` and a HorizontalPodAutoscaler drive it.

Not everything is pooled:

- the slots of an isolated template (`spec.template.network.egress` None or AllowList) are not kept: an
  isolated agent has a gateway of its own, so a Workspace of such a template is made when asked for (a
  cold create), pool or not;
- a Workspace is served from a pool only when its resolved spec (the template's fields with the
  Workspace's own overrides) makes exactly the container the slot is. Any override that changes the
  container (env, config, image, another deletionPolicy, a platform workspaceID, ...) makes a cold
  create instead; what a binding changes in the running agent is only its identity and its auth token.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from controller.api.base import ApiModel
from controller.api.workspace import API_VERSION, Condition, LocalObjectReference

POOL_KIND = "WorkspacePool"
POOL_PLURAL = "workspacepools"
POOL_SINGULAR = "workspacepool"
POOL_SHORT_NAMES = ("wspool",)

MAX_POOL_REPLICAS = 100


class WorkspacePoolSpec(ApiModel):
    """Which template's agents to keep warm, and how many."""

    template_ref: LocalObjectReference = Field(
        description="The WorkspaceTemplate in this namespace the warm agents are made from; Workspaces "
        "naming it (spec.templateRef) are bound to one of them when their spec makes the same container.",
    )
    replicas: int = Field(
        default=1,
        ge=0,
        le=MAX_POOL_REPLICAS,
        description="How many warm agents to keep (not counting those already bound to a Workspace). The "
        "scale subresource's: kubectl scale and a HorizontalPodAutoscaler drive it. 0 keeps none.",
    )


class WorkspacePoolStatus(ApiModel):
    """What the pool holds, written by the controller."""

    observed_generation: int | None = Field(default=None, ge=0)
    replicas: int = Field(default=0, ge=0, description="Warm agents that exist (not yet bound).")
    ready_replicas: int = Field(default=0, ge=0, description="Warm agents that are Ready to be bound.")
    claimed: int = Field(
        default=0, ge=0, description="Workspaces bound to a warm agent of this pool so far (cumulative)."
    )
    selector: str = Field(
        default="",
        max_length=1024,
        description="The label selector of the warm agents, as a string (the scale subresource's).",
    )
    template_generation: int | None = Field(
        default=None, ge=0, description="The template's metadata.generation the warm agents are made from."
    )
    conditions: tuple[Condition, ...] = Field(
        default=(),
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )

    def to_dict(self) -> dict[str, Any]:
        """The status as the apiserver stores it: camelCase, unset fields omitted."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class WorkspacePool(ApiModel):
    """Warm agents of a WorkspaceTemplate, so that its Workspaces start in well under a second."""

    api_version: str = API_VERSION
    kind: str = POOL_KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: WorkspacePoolSpec
    status: WorkspacePoolStatus | None = None
