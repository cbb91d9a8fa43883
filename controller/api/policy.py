"""What a Workspace may ask for, decided by a cluster admin: the WorkspacePolicy resource, as pydantic models.

A `WorkspacePolicy` (cluster-scoped) grants the namespaces its selector matches what they may use beyond
the default: more tiers, host directories for /workspace (each with the most access it allows), image
sources, the Docker socket for tier 4. Grants are additive, like RBAC: a namespace gets the union of every
policy that selects it. Without any grant a namespace has tiers 1 and 2, no host paths, and images under
the controller's registry prefix only; the host-path floor (`FORBIDDEN_HOST_PATH_ROOTS`) holds under every
grant.

`EffectiveWorkspacePolicy` is written by the controller, never by people: the union of every policy, in the
one object the admission policy (deploy/admission/) reads as its parameter, so that a Workspace is checked
at `kubectl apply` against the grants of the moment, with its namespace's labels of the moment.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from controller.api.base import ApiModel
from controller.api.selectors import LabelSelector
from controller.api.workspace import (
    API_VERSION,
    ContainerRuntimeName,
    EgressDestination,
    host_path_floor_cel,
    host_path_problem,
)

POLICY_KIND = "WorkspacePolicy"
POLICY_PLURAL = "workspacepolicies"
POLICY_SINGULAR = "workspacepolicy"
POLICY_SHORT_NAMES = ("wspol",)
EFFECTIVE_KIND = "EffectiveWorkspacePolicy"
EFFECTIVE_PLURAL = "effectiveworkspacepolicies"
EFFECTIVE_SINGULAR = "effectiveworkspacepolicy"

DEFAULT_TIERS = (1, 2)
MAX_POLICIES = 64
"""How many WorkspacePolicies admission can read (the CEL cost of a request grows with them)."""
MAX_MATCHED_NAMESPACES_LISTED = 64

GrantedAccess = Literal["read_only", "read_write"]

# An image source: a registry host (with port) and repository path, ending in "/" so that a grant of
# "ghcr.io/team-a/" never covers "ghcr.io/team-abc/".
IMAGE_PREFIX_PATTERN = (
    r"^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]+)?/([a-z0-9]+(([._]|__|-+)[a-z0-9]+)*/)*$"
)


class HostPathGrant(ApiModel):
    path: str = Field(
        max_length=4096,
        description="A host directory; Workspaces may mount it or anything below it at /workspace.",
        json_schema_extra={"x-kubernetes-validations": host_path_floor_cel("hostPaths[].path")},
    )
    access: GrantedAccess = Field(
        default="read_only", description="The most access a Workspace may ask for below this path."
    )

    @field_validator("path")
    @classmethod
    def _above_the_floor(cls, path: str) -> str:
        problem = host_path_problem(path)
        if problem:
            raise ValueError(problem.replace("workspace.hostPath", "hostPaths[].path"))
        return path


class ImageGrant(ApiModel):
    prefix: str = Field(
        max_length=512,
        pattern=IMAGE_PREFIX_PATTERN,
        description="A registry and repository path ending in '/', e.g. ghcr.io/team-a/.",
    )
    digests_only: bool = Field(
        default=False, description="Only references pinned by digest (@sha256:...) under this prefix."
    )


class WorkspacePolicySpec(ApiModel):
    """What the selected namespaces may use beyond the default: tiers 1-2, no host path, registry images."""

    namespace_selector: LabelSelector = Field(
        description="The namespaces granted; {} selects every namespace.",
    )
    tiers: tuple[Annotated[int, Field(ge=1, le=4)], ...] = Field(
        default=(),
        max_length=4,
        description="Tiers allowed besides 1 and 2: 3 (privileged, host PID) and 4 (also host network).",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    host_paths: tuple[HostPathGrant, ...] = Field(
        default=(),
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["path"]},
    )
    images: tuple[ImageGrant, ...] = Field(
        default=(),
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["prefix"]},
    )
    docker_socket: bool = Field(
        default=False, description="Tier 4 containers get the Docker socket (root on the Docker host)."
    )
    require_container_runtime: ContainerRuntimeName | None = Field(
        default=None,
        description="The selected namespaces' Workspaces must run under this OCI runtime (e.g. runsc, "
        "gVisor); with several policies requiring one, any of theirs. Checked by the controller "
        "(Stalled/PolicyDenied), after the Workspace's template is applied.",
    )
    require_network_isolation: bool = Field(
        default=False,
        description="The selected namespaces' Workspaces must be isolated (spec.network.egress None or "
        "AllowList), and an AllowList may name only destinations that the allowedEgress of a policy "
        "selecting the namespace covers. Checked by the controller (Stalled/PolicyDenied), after the "
        "Workspace's template is applied.",
    )
    allowed_egress: tuple[EgressDestination, ...] = Field(
        default=(),
        max_length=32,
        description="Where isolated Workspaces of the selected namespaces may reach, e.g. "
        '"*.anthropic.com:443": an entry covers the same host:port, and a wildcard covers the names '
        "and narrower wildcards under its domain. Consulted when a policy requires isolation.",
    )
    platform_identity: bool = Field(
        default=False,
        description="Workspaces may carry the platform's IDs (spec.workspaceID: their names, which the "
        "platform routes to) and take over the Go provisioner's containers and volumes (spec.adopt). For "
        "the namespaces the Molecule platform writes to.",
    )

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, tiers: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(tiers)) != len(tiers):
            raise ValueError("tiers must not repeat")
        return tiers

    @field_validator("allowed_egress")
    @classmethod
    def _ports(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        for entry in entries:
            if not 1 <= int(entry.rpartition(":")[2]) <= 65535:
                raise ValueError(f"allowedEgress: {entry} has no valid port (1-65535)")
        return entries


class WorkspacePolicyStatus(ApiModel):
    observed_generation: int | None = Field(default=None, ge=0)
    matched_namespaces: tuple[str, ...] = Field(
        default=(),
        max_length=MAX_MATCHED_NAMESPACES_LISTED,
        description=f"The namespaces the selector matches (the first {MAX_MATCHED_NAMESPACES_LISTED}).",
    )
    matched_namespace_count: int | None = Field(default=None, ge=0)
    admitted: bool | None = Field(
        default=None,
        description=(
            f"Whether admission reads this grant: only the first {MAX_POLICIES} policies by name fit in the "
            "EffectiveWorkspacePolicy; the controller enforces every policy either way."
        ),
    )

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class WorkspacePolicy(ApiModel):
    """Grants namespaces what their Workspaces may use beyond the default. Additive, like RBAC."""

    api_version: str = API_VERSION
    kind: str = POLICY_KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: WorkspacePolicySpec
    status: WorkspacePolicyStatus | None = None


class EffectiveGrant(WorkspacePolicySpec):
    """One WorkspacePolicy, as the admission policy reads it."""

    policy: str = Field(max_length=253, description="The WorkspacePolicy this grant comes from.")


class EffectiveWorkspacePolicySpec(ApiModel):
    default_image_prefix: str = Field(
        max_length=512, description="Images under this prefix ('<prefix>/...') are allowed everywhere."
    )
    grants: tuple[EffectiveGrant, ...] = Field(
        default=(),
        max_length=MAX_POLICIES,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["policy"]},
    )


class EffectiveWorkspacePolicy(ApiModel):
    """Written by the workspace controller: every WorkspacePolicy at once, for the admission policy."""

    api_version: str = API_VERSION
    kind: str = EFFECTIVE_KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: EffectiveWorkspacePolicySpec
