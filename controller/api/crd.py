"""Generate the CustomResourceDefinitions (Workspace, WorkspacePolicy, EffectiveWorkspacePolicy, DockerHost,
WorkspaceTemplate, WorkspacePool) from the pydantic models.

pydantic emits JSON Schema 2020-12 ($defs, $ref, anyOf-null for optionals); the apiserver wants a *structural*
OpenAPI v3 schema: every node typed, everything inline, no anyOf. ``structural_schema`` performs that
conversion and refuses anything it does not understand, so a model change that cannot be expressed in a CRD
fails loudly here rather than in a cluster.

    python -m controller.api.crd            # print the CRDs as YAML
    python -m controller.api.crd --write    # regenerate crds/<plural>.molecule.ai.yaml
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel

from controller.api import dockerhost, policy, pool, template
from controller.api import workspace as api

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"

_HEADER = (
    "# Generated from controller/api/workspace.py by `python -m controller.api.crd --write`. Do not edit.\n"
)

# Keys carried over from pydantic's output, in the order they are written (stable, readable YAML).
_KEY_ORDER = (
    "description",
    "type",
    "default",
    "enum",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "maxProperties",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
)
_KEPT_KEYS = frozenset(_KEY_ORDER) - {"properties", "items", "additionalProperties"}
# Keys that carry nothing the apiserver uses.
_DROPPED_KEYS = frozenset({"title", "examples", "$defs"})

PRINTER_COLUMNS: tuple[dict[str, Any], ...] = (
    # The values the spec resolves to (its template's, or the defaults, where it sets none).
    {"name": "Runtime", "type": "string", "jsonPath": ".status.runtime"},
    {"name": "Tier", "type": "integer", "jsonPath": ".status.tier"},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Reason", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].reason'},
    {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint"},
    {"name": "Host", "type": "string", "jsonPath": ".status.host", "priority": 1},
    {"name": "Workspace-ID", "type": "string", "jsonPath": ".status.workspaceID", "priority": 1},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "priority": 1},
    {"name": "Template", "type": "string", "jsonPath": ".spec.templateRef.name", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)
TEMPLATE_PRINTER_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Runtime", "type": "string", "jsonPath": ".spec.template.runtime"},
    {"name": "Tier", "type": "integer", "jsonPath": ".spec.template.tier"},
    {"name": "Overridable", "type": "string", "jsonPath": ".spec.allowOverrides"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)
POOL_PRINTER_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Template", "type": "string", "jsonPath": ".spec.templateRef.name"},
    {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas"},
    {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
    {"name": "Claimed", "type": "integer", "jsonPath": ".status.claimed", "priority": 1},
    {"name": "Status", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {
        "name": "Reason",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
        "priority": 1,
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)
POOL_SCALE: dict[str, str] = {
    "specReplicasPath": ".spec.replicas",
    "statusReplicasPath": ".status.replicas",
    "labelSelectorPath": ".status.selector",
}
"""The scale subresource: `kubectl scale` and a HorizontalPodAutoscaler set .spec.replicas."""
POLICY_PRINTER_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Tiers", "type": "string", "jsonPath": ".spec.tiers"},
    {"name": "Docker-Socket", "type": "boolean", "jsonPath": ".spec.dockerSocket"},
    {"name": "Namespaces", "type": "integer", "jsonPath": ".status.matchedNamespaceCount"},
    {"name": "Host-Paths", "type": "string", "jsonPath": ".spec.hostPaths[*].path", "priority": 1},
    {"name": "Images", "type": "string", "jsonPath": ".spec.images[*].prefix", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)
EFFECTIVE_PRINTER_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Default-Images", "type": "string", "jsonPath": ".spec.defaultImagePrefix"},
    {"name": "Grants", "type": "string", "jsonPath": ".spec.grants[*].policy"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)

HOST_PRINTER_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Endpoint", "type": "string", "jsonPath": ".spec.endpoint"},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Cordoned", "type": "boolean", "jsonPath": ".spec.unschedulable", "priority": 1},
    {"name": "Workspaces", "type": "integer", "jsonPath": ".status.allocated.workspaces"},
    {"name": "CPUs", "type": "string", "jsonPath": ".status.allocated.cpus"},
    {"name": "CPU-Capacity", "type": "string", "jsonPath": ".status.capacity.cpus"},
    {"name": "Memory-MiB", "type": "integer", "jsonPath": ".status.allocated.memoryMiB"},
    {"name": "Memory-Capacity", "type": "integer", "jsonPath": ".status.capacity.memoryMiB"},
    {"name": "Version", "type": "string", "jsonPath": ".status.info.serverVersion", "priority": 1},
    {"name": "Runtimes", "type": "string", "jsonPath": ".status.info.runtimes", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)


@dataclass(frozen=True)
class Resource:
    """One custom resource of the API group: its model, names, scope and how `kubectl get` shows it."""

    model: type[BaseModel]
    kind: str
    plural: str
    singular: str
    scope: Literal["Namespaced", "Cluster"]
    printer_columns: tuple[dict[str, Any], ...]
    short_names: tuple[str, ...] = ()
    status: bool = True
    cel_rules: bool = True
    """False for an object only the controller writes from objects the rules already checked: its CEL
    rules, repeated once per grant, would exceed the apiserver's cost budget for nothing."""
    undefaulted: tuple[str, ...] = ()
    """Fields of the spec left without a default (the ones below them keep theirs): unset stays unset,
    so that a template's value can fill it; the controller applies the model's default after that."""
    scale: Mapping[str, str] | None = None
    """The scale subresource (specReplicasPath, statusReplicasPath, labelSelectorPath), if it has one."""

    @property
    def name(self) -> str:
        return f"{self.plural}.{api.GROUP}"

    @property
    def path(self) -> Path:
        return CRD_DIR / f"{self.name}.yaml"


WORKSPACE = Resource(
    api.Workspace,
    api.KIND,
    api.PLURAL,
    api.SINGULAR,
    "Namespaced",
    PRINTER_COLUMNS,
    api.SHORT_NAMES,
    undefaulted=template.TEMPLATE_FIELDS,
)
WORKSPACE_TEMPLATE = Resource(
    template.WorkspaceTemplate,
    template.TEMPLATE_KIND,
    template.TEMPLATE_PLURAL,
    template.TEMPLATE_SINGULAR,
    "Namespaced",
    TEMPLATE_PRINTER_COLUMNS,
    template.TEMPLATE_SHORT_NAMES,
    status=False,
)
WORKSPACE_POLICY = Resource(
    policy.WorkspacePolicy,
    policy.POLICY_KIND,
    policy.POLICY_PLURAL,
    policy.POLICY_SINGULAR,
    "Cluster",
    POLICY_PRINTER_COLUMNS,
    policy.POLICY_SHORT_NAMES,
)
EFFECTIVE_WORKSPACE_POLICY = Resource(
    policy.EffectiveWorkspacePolicy,
    policy.EFFECTIVE_KIND,
    policy.EFFECTIVE_PLURAL,
    policy.EFFECTIVE_SINGULAR,
    "Cluster",
    EFFECTIVE_PRINTER_COLUMNS,
    status=False,
    cel_rules=False,
)
DOCKER_HOST = Resource(
    dockerhost.DockerHost,
    dockerhost.HOST_KIND,
    dockerhost.HOST_PLURAL,
    dockerhost.HOST_SINGULAR,
    "Cluster",
    HOST_PRINTER_COLUMNS,
    dockerhost.HOST_SHORT_NAMES,
)
WORKSPACE_POOL = Resource(
    pool.WorkspacePool,
    pool.POOL_KIND,
    pool.POOL_PLURAL,
    pool.POOL_SINGULAR,
    "Namespaced",
    POOL_PRINTER_COLUMNS,
    pool.POOL_SHORT_NAMES,
    scale=POOL_SCALE,
)
RESOURCES = (
    WORKSPACE,
    WORKSPACE_POLICY,
    EFFECTIVE_WORKSPACE_POLICY,
    DOCKER_HOST,
    WORKSPACE_TEMPLATE,
    WORKSPACE_POOL,
)
CRD_PATH = WORKSPACE.path


class UnsupportedSchemaError(ValueError):
    """A pydantic schema construct has no structural OpenAPI v3 equivalent."""


def structural_schema(node: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """Convert one pydantic JSON-schema node (and everything below it) into a structural schema node."""
    merged = _inline(node, defs)
    out: dict[str, Any] = {}
    for key, value in merged.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "properties":
            out["properties"] = {name: structural_schema(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out["items"] = structural_schema(value, defs)
        elif key == "additionalProperties":
            # `true` (dict[str, Any]) means "an object", which a bare `type: object` already says; `false`
            # is not allowed in a structural schema (unknown fields are pruned instead).
            if isinstance(value, Mapping):
                out["additionalProperties"] = structural_schema(value, defs)
        elif key in _KEPT_KEYS:
            out[key] = copy.deepcopy(value)
        else:
            raise UnsupportedSchemaError(f"schema keyword {key!r} has no structural equivalent: {dict(node)}")
    if "type" not in out:
        raise UnsupportedSchemaError(f"schema node without a type: {dict(node)}")
    _normalise_default(out)
    return {key: out[key] for key in _KEY_ORDER if key in out}


def _inline(node: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """Resolve $ref / single allOf / anyOf-with-null, letting the outer node's keys win (field over model)."""
    node = dict(node)
    if "$ref" in node:
        target = _resolve(node.pop("$ref"), defs)
        return {**_inline(target, defs), **node}
    if "allOf" in node:
        parts = node.pop("allOf")
        if len(parts) != 1:
            raise UnsupportedSchemaError(f"allOf with {len(parts)} members")
        return {**_inline(parts[0], defs), **node}
    if "anyOf" in node:
        # Optional[X] is `anyOf: [X, {type: null}]`; the CRD expresses optionality by leaving the field out
        # of `required`, so the null branch is dropped.
        branches = [branch for branch in node.pop("anyOf") if branch != {"type": "null"}]
        if len(branches) != 1:
            raise UnsupportedSchemaError(f"anyOf with {len(branches)} non-null branches")
        if node.get("default", ...) is None:
            del node["default"]
        return {**_inline(branches[0], defs), **node}
    return node


def _resolve(ref: str, defs: Mapping[str, Any]) -> Mapping[str, Any]:
    prefix = "#/$defs/"
    if not ref.startswith(prefix) or ref[len(prefix) :] not in defs:
        raise UnsupportedSchemaError(f"unresolvable $ref {ref!r}")
    target: Mapping[str, Any] = defs[ref[len(prefix) :]]
    return target


def _normalise_default(node: dict[str, Any]) -> None:
    if "default" not in node:
        return
    if node["type"] == "object":
        # The apiserver applies nested defaults once the parent exists, so `{}` is enough and keeps each
        # default in exactly one place: on the field it belongs to.
        node["default"] = {}
    elif node["type"] == "array":
        # An empty list default only adds `[]` noise to every object.
        del node["default"]


def _strip_defaults(node: dict[str, Any]) -> None:
    """Status is written by the controller only; defaults there would be invented values."""
    node.pop("default", None)
    for sub in node.get("properties", {}).values():
        _strip_defaults(sub)
    if "items" in node:
        _strip_defaults(node["items"])


def openapi_schema(resource: Resource = WORKSPACE) -> dict[str, Any]:
    """The structural schema of a whole object of `resource`."""
    pydantic_schema = resource.model.model_json_schema(by_alias=True, mode="validation")
    defs = pydantic_schema.get("$defs", {})
    root = structural_schema(pydantic_schema, defs)
    properties = root["properties"]
    # apiVersion, kind and metadata are the apiserver's; declaring more than their type would be ignored
    # (metadata) or would invent defaults (apiVersion, kind).
    properties["apiVersion"] = {"type": "string"}
    properties["kind"] = {"type": "string"}
    properties["metadata"] = {"type": "object"}
    if "status" in properties:
        _strip_defaults(properties["status"])
    for name in resource.undefaulted:
        properties["spec"]["properties"][name].pop("default", None)
    if not resource.cel_rules:
        _strip_cel_rules(root)
    return root


def _strip_cel_rules(node: dict[str, Any]) -> None:
    node.pop("x-kubernetes-validations", None)
    for sub in node.get("properties", {}).values():
        _strip_cel_rules(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            _strip_cel_rules(node[key])


def build_crd(resource: Resource = WORKSPACE) -> dict[str, Any]:
    version: dict[str, Any] = {
        "name": api.VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": openapi_schema(resource)},
    }
    subresources: dict[str, Any] = {}
    if resource.status:
        subresources["status"] = {}
    if resource.scale is not None:
        subresources["scale"] = dict(resource.scale)
    if subresources:
        version["subresources"] = subresources
    version["additionalPrinterColumns"] = [dict(column) for column in resource.printer_columns]
    names: dict[str, Any] = {
        "kind": resource.kind,
        "listKind": f"{resource.kind}List",
        "plural": resource.plural,
        "singular": resource.singular,
    }
    if resource.short_names:
        names["shortNames"] = list(resource.short_names)
    names["categories"] = list(api.CATEGORIES)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": resource.name},
        "spec": {"group": api.GROUP, "scope": resource.scope, "names": names, "versions": [version]},
    }


def render_crd_yaml(resource: Resource = WORKSPACE) -> str:
    header = _HEADER.replace(
        "controller/api/workspace.py", f"controller/api/{resource.model.__module__.split('.')[-1]}.py"
    )
    return header + yaml.safe_dump(build_crd(resource), sort_keys=False, default_flow_style=False, width=120)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controller.api.crd", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write crds/<plural>.molecule.ai.yaml")
    args = parser.parse_args(argv)
    for resource in RESOURCES:
        text = render_crd_yaml(resource)
        if args.write:
            resource.path.parent.mkdir(parents=True, exist_ok=True)
            resource.path.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text if resource is WORKSPACE else "---\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
