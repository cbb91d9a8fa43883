"""A Workspace spec and its WorkspaceTemplate, made into one spec: pure.

The template's fields come first; the Workspace's own fields go over them, and may only where the
template's allowOverrides lists the field (env is merged by name, the Workspace's entry winning; any other
field is replaced whole). A Workspace that sets a pinned field is refused with the message the admission
policy in deploy/admission/ gives at `kubectl apply`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from controller.api.template import TEMPLATE_FIELDS, WorkspaceTemplateSpec
from controller.api.workspace import TemplateStatus
from controller.core.causes import Cause, Reason

TEMPLATE_REF = "templateRef"


@dataclass(frozen=True)
class Template:
    """One WorkspaceTemplate as a reconcile needs it: its fields on the wire (camelCase), as written."""

    name: str
    generation: int
    fields: Mapping[str, Any] = field(default_factory=dict)
    allow_overrides: tuple[str, ...] = ()

    @property
    def status(self) -> TemplateStatus:
        return TemplateStatus(name=self.name, generation=self.generation)


def template_of(body: Mapping[str, Any]) -> Template | Cause:
    """A WorkspaceTemplate object, read; a Cause (InvalidSpec) when its spec cannot be read (the schema
    admits nothing this refuses: an object from a newer CRD, say)."""
    meta = body.get("metadata") or {}
    name = str(meta.get("name", ""))
    raw = body.get("spec") or {}
    try:
        spec = WorkspaceTemplateSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return Cause(Reason.INVALID_SPEC, f"WorkspaceTemplate {name} cannot be read: {where}: {first['msg']}")
    written = raw.get("template") or {}
    return Template(
        name=name,
        generation=int(meta.get("generation") or 0),
        fields={key: value for key, value in written.items() if key in TEMPLATE_FIELDS},
        allow_overrides=tuple(spec.allow_overrides),
    )


def template_name(spec: Mapping[str, Any]) -> str | None:
    """The WorkspaceTemplate a Workspace spec names, if any."""
    ref = spec.get(TEMPLATE_REF)
    if isinstance(ref, Mapping) and isinstance(ref.get("name"), str) and ref["name"]:
        return str(ref["name"])
    return None


def pinned_overrides(spec: Mapping[str, Any], template: Template) -> tuple[str, ...]:
    """The fields `spec` sets that `template` pins, in the order of TEMPLATE_FIELDS."""
    return tuple(
        name
        for name in TEMPLATE_FIELDS
        if name in spec and name in template.fields and name not in template.allow_overrides
    )


def override_message(fields: tuple[str, ...], template: str, allowed: tuple[str, ...]) -> str:
    """Why a Workspace may not set `fields` (the admission policy builds the same words)."""
    named = ", ".join(f"spec.{name}" for name in fields)
    return f"{named}: pinned by WorkspaceTemplate {template}, whose allowOverrides is [{', '.join(allowed)}]"


def missing_message(name: str, namespace: str) -> str:
    return f"WorkspaceTemplate {name} not found in namespace {namespace}"


def resolve(spec: Mapping[str, Any], template: Template) -> dict[str, Any] | Cause:
    """The spec `spec` and `template` make together; a Cause (TemplateOverrideDenied) when `spec` sets a
    field the template pins."""
    pinned = pinned_overrides(spec, template)
    if pinned:
        return Cause(
            Reason.TEMPLATE_OVERRIDE_DENIED, override_message(pinned, template.name, template.allow_overrides)
        )
    merged: dict[str, Any] = dict(template.fields)
    for key, value in spec.items():
        if key == "env" and isinstance(merged.get("env"), list) and isinstance(value, list):
            merged["env"] = _merged_env(merged["env"], value)
        else:
            merged[key] = value
    return merged


def _merged_env(base: list[Any], over: list[Any]) -> list[Any]:
    """The template's entries with the Workspace's over them by name, in the template's order, then the
    Workspace's new ones in theirs."""
    by_name = {entry.get("name"): entry for entry in over if isinstance(entry, Mapping)}
    merged = [
        by_name.pop(entry.get("name"), entry) if isinstance(entry, Mapping) else entry for entry in base
    ]
    return merged + [entry for entry in over if isinstance(entry, Mapping) and entry.get("name") in by_name]
