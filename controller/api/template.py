"""What an agent looks like, defined once by a platform team: the WorkspaceTemplate resource.

A `WorkspaceTemplate` (namespaced: a Workspace refers to one in its own namespace, so who may write
templates there is ordinary RBAC) holds any part of a Workspace spec. A Workspace names it in
`spec.templateRef`; the fields the template sets are pinned, and a Workspace may set one of them itself
only when the template lists it in `allowOverrides`. What the two make together is an ordinary Workspace
spec, judged by the namespace's WorkspacePolicies like any other: a template never grants what policy
forbids.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, get_args

from pydantic import Field, create_model
from pydantic.fields import FieldInfo

from controller.api.base import ApiModel
from controller.api.workspace import API_VERSION, WorkspaceSpec

TEMPLATE_KIND = "WorkspaceTemplate"
TEMPLATE_PLURAL = "workspacetemplates"
TEMPLATE_SINGULAR = "workspacetemplate"
TEMPLATE_SHORT_NAMES = ("wstpl",)

TemplateField = Literal[
    "runtime",
    "image",
    "imagePullPolicy",
    "imagePullSecrets",
    "tier",
    "env",
    "envFrom",
    "config",
    "authToken",
    "workspace",
    "updateStrategy",
    "imageUpdate",
    "readiness",
    "progressDeadlineSeconds",
    "platformURL",
    "awareness",
    "placement",
    "shutdownAfter",
    "hibernation",
    "containerRuntime",
    "network",
]
"""The parts of a Workspace spec a template may hold. Not: the Workspace's identity (workspaceID, adopt),
its one-off requests (restartRequestedAt, session, wakeRequestedAt), suspend, shutdownTime (a moment is
one Workspace's), and shutdownPolicy and deletionPolicy (whether a Workspace and a user's data are ever
deleted is the Workspace's own word: a template changed later would delete every older Workspace)."""
TEMPLATE_FIELDS: tuple[str, ...] = get_args(TemplateField)


def _python_name(wire: str) -> str:
    for name, info in WorkspaceSpec.model_fields.items():
        if (info.alias or name) == wire or name == wire:
            return name
    raise KeyError(wire)


def _unset_by_default(wire: str) -> tuple[Any, FieldInfo]:
    info = WorkspaceSpec.model_fields[_python_name(wire)]
    return (Optional[info.annotation], FieldInfo.merge_field_infos(info, default=None))  # noqa: UP045


# The template's part of a spec: the Workspace's fields, each unset unless the template sets it (so the
# schema invents no default that would then be pinned).
WorkspaceTemplateFields: type[ApiModel] = create_model(  # type: ignore[call-overload]
    "WorkspaceTemplateFields",
    __base__=ApiModel,
    __doc__="Any part of a Workspace spec; what is set here is pinned unless allowOverrides lists it.",
    **{_python_name(wire): _unset_by_default(wire) for wire in TEMPLATE_FIELDS},
)


class WorkspaceTemplateSpec(ApiModel):
    """Part of a Workspace spec, shared by the Workspaces that name this template."""

    template: WorkspaceTemplateFields = Field(
        default_factory=WorkspaceTemplateFields,
        description="The fields every Workspace of this template gets. A Workspace that sets one of them "
        "itself is refused, unless allowOverrides lists it.",
    )
    allow_overrides: tuple[TemplateField, ...] = Field(
        default=(),
        max_length=len(TEMPLATE_FIELDS),
        description="Fields a Workspace may set itself, over the template's. env is merged by name (the "
        "Workspace's entry wins); every other field is replaced whole.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class WorkspaceTemplate(ApiModel):
    """An agent as a platform team defines it once; Workspaces refer to it by name (spec.templateRef)."""

    api_version: str = API_VERSION
    kind: str = TEMPLATE_KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: WorkspaceTemplateSpec
