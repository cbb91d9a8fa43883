"""The generated CRD: up to date, structural, bounded, and carrying the rules the models declare."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from controller.api import crd
from controller.api.crd import CRD_PATH, UnsupportedSchemaError, build_crd, render_crd_yaml, structural_schema
from controller.api.template import TEMPLATE_FIELDS
from controller.api.workspace import INLINE_TEXT_BUDGET, WorkspaceSpec

FORBIDDEN_KEYWORDS = {"$ref", "$defs", "anyOf", "allOf", "oneOf", "not", "nullable", "title", "const"}


def schema() -> dict[str, Any]:
    root: dict[str, Any] = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return root


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def test_crd_file_is_up_to_date_with_the_models() -> None:
    assert CRD_PATH.exists(), "run: python -m controller.api.crd --write"
    assert CRD_PATH.read_text(encoding="utf-8") == render_crd_yaml(), (
        "crds/ is stale; run: python -m controller.api.crd --write"
    )


def test_crd_yaml_round_trips_to_the_built_object() -> None:
    assert yaml.safe_load(render_crd_yaml()) == build_crd()


def test_crd_names_scope_and_version() -> None:
    spec = build_crd()["spec"]
    assert build_crd()["metadata"]["name"] == "workspaces.molecule.ai"
    assert spec["group"] == "molecule.ai"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": "Workspace",
        "listKind": "WorkspaceList",
        "plural": "workspaces",
        "singular": "workspace",
        "shortNames": ["ws"],
        "categories": ["molecule"],
    }
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def test_printer_columns_show_runtime_tier_ready_reason_endpoint_and_wide_host_and_phase() -> None:
    columns = {c["name"]: c for c in build_crd()["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert list(columns) == [
        "Runtime",
        "Tier",
        "Ready",
        "Reason",
        "Endpoint",
        "Host",
        "Workspace-ID",
        "Phase",
        "Template",
        "Age",
    ]
    assert columns["Template"]["jsonPath"] == ".spec.templateRef.name"
    assert columns["Workspace-ID"]["jsonPath"] == ".status.workspaceID"
    assert columns["Workspace-ID"]["priority"] == 1
    assert columns["Host"] == {"name": "Host", "type": "string", "jsonPath": ".status.host", "priority": 1}
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Reason"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].reason'
    assert columns["Phase"]["priority"] == 1
    assert columns["Age"] == {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def test_schema_is_structural_every_node_typed_and_nothing_unresolved() -> None:
    for path, node in walk(schema()):
        assert "type" in node, f"{path} has no type"
        assert not FORBIDDEN_KEYWORDS & node.keys(), f"{path} keeps {FORBIDDEN_KEYWORDS & node.keys()}"
        assert node.get("additionalProperties") is not False, path
        if "properties" in node:
            assert node["type"] == "object", path
            assert set(node.get("required", [])) <= set(node["properties"]), path


def test_every_string_and_list_in_spec_and_status_is_bounded() -> None:
    # Bounds keep CEL's estimated cost within the apiserver's budget.
    for part in ("spec", "status"):
        for path, node in walk(schema()["properties"][part], part):
            if node["type"] == "string":
                assert "maxLength" in node or "enum" in node, f"{path} has no maxLength"
            if node["type"] == "array":
                assert "maxItems" in node, f"{path} has no maxItems"


def test_list_maps_are_keyed_by_required_fields() -> None:
    maps = {path: node for path, node in walk(schema()) if node.get("x-kubernetes-list-type") == "map"}
    assert set(maps) == {".spec.env", ".spec.config.files", ".status.conditions"}
    for path, node in maps.items():
        for key in node["x-kubernetes-list-map-keys"]:
            assert key in node["items"]["required"], f"{path} key {key} must be required"


def test_spec_defaults_are_in_the_schema_except_where_a_template_may_fill_the_field() -> None:
    props = schema()["properties"]["spec"]["properties"]
    # What a template cannot set is defaulted by the apiserver, so kubectl shows it.
    assert props["suspend"]["default"] is False
    assert props["deletionPolicy"]["default"] == "Delete"
    assert "templateRef" in props
    # A field a template may set stays unset when the Workspace leaves it out: the template's value (or
    # the model's default, applied by the controller) fills it.
    for name in TEMPLATE_FIELDS:
        assert "default" not in props[name], name
    assert WorkspaceSpec().runtime == "langgraph"
    assert WorkspaceSpec().tier == 2
    # Below a field, defaults stay: they apply once the field is there.
    assert props["workspace"]["properties"]["access"]["default"] == "none"
    assert props["authToken"]["properties"]["secretRef"]["properties"]["key"]["default"] == "token"


def test_status_has_no_defaults_and_declares_every_field_the_controller_writes() -> None:
    status = schema()["properties"]["status"]
    assert all("default" not in node for _, node in walk(status))
    assert set(status["properties"]) == {
        "observedGeneration",
        "conditions",
        "phase",
        "container",
        "endpoint",
        "internalURL",
        "authTokenSecretName",
        "session",
        "lastHandledRestartAt",
        "lastHandledReconcileAt",
        "host",
        "workspaceID",
        "adopted",
        "rollout",
        "image",
        "template",
        "hibernation",
        "runtime",
        "tier",
    }
    assert set(status["properties"]["container"]["properties"]) == {
        "name",
        "id",
        "image",
        "imageID",
        "imageDigest",
        "state",
        "health",
        "startedAt",
        "restartCount",
        "exitCode",
        "oomKilled",
        "finishedAt",
        "configHash",
    }
    condition = status["properties"]["conditions"]["items"]
    assert condition["required"] == ["type", "status", "reason", "message", "lastTransitionTime"]


def test_optional_fields_are_plain_types_left_out_of_required() -> None:
    spec = schema()["properties"]["spec"]
    assert spec["properties"]["imagePullPolicy"] == {
        "description": spec["properties"]["imagePullPolicy"]["description"],
        "type": "string",
        "enum": ["Always", "IfNotPresent", "Never"],
    }
    assert "required" not in spec
    assert schema()["required"] == ["spec"]


def rules(node: dict[str, Any]) -> list[str]:
    return [v["rule"] for v in node.get("x-kubernetes-validations", [])]


def test_cel_rules_from_the_models_reach_the_schema() -> None:
    spec = schema()["properties"]["spec"]["properties"]
    env_item = spec["env"]["items"]
    assert "has(self.value) != has(self.valueFrom)" in rules(env_item)
    reserved = next(v for v in env_item["x-kubernetes-validations"] if "WORKSPACE_ID" in v["rule"])
    assert "PYTHONPATH" not in reserved["rule"]
    assert reserved["fieldPath"] == ".name"
    assert "messageExpression" in reserved
    assert "message" in reserved
    assert rules(env_item["properties"]["valueFrom"]) == [
        "has(self.secretKeyRef) != has(self.configMapKeyRef)"
    ]
    workspace = spec["workspace"]
    assert "has(self.hostPath)" in rules(workspace)[0]
    host_rules = " ".join(rules(workspace["properties"]["hostPath"]))
    for root in ("/etc", "/var", "/proc", "/sys", "/dev", "/boot", "/sbin", "/bin", "/lib", "/usr"):
        assert f"'{root}'" in host_rules
    assert rules(spec["config"]["properties"]["files"]["items"]["properties"]["path"])
    assert rules(schema()) == ["size(self.metadata.name) <= 242"]


def test_cel_rules_use_only_simple_functions() -> None:
    """Cheap rules only (the apiserver refuses a CRD whose estimated CEL cost is too high), but for the
    one size budget of the whole spec, which must add up its list (pinned below), and the label-key rule
    of the placement's host selector (at most 16 keys of at most 317 characters)."""
    allowed = ("has(", "size(", ".startsWith(", ".endsWith(", ".contains(", ".exists(", " in ")
    for path, node in walk(schema()):
        if path in (".spec", ".spec.placement.hostSelector.matchLabels"):
            continue
        for rule in rules(node):
            calls = [token for token in ("matches(", "split(", "all(", "map(", "filter(") if token in rule]
            assert not calls, f"{path}: {rule}"
            assert any(fn in rule for fn in allowed) or "==" in rule or "!=" in rule, rule


def test_converter_refuses_what_it_cannot_express() -> None:
    with pytest.raises(UnsupportedSchemaError, match="non-null branches"):
        structural_schema({"anyOf": [{"type": "string"}, {"type": "integer"}]}, {})
    with pytest.raises(UnsupportedSchemaError, match="without a type"):
        structural_schema({"description": "untyped"}, {})
    with pytest.raises(UnsupportedSchemaError, match="unresolvable"):
        structural_schema({"$ref": "#/$defs/Missing"}, {})
    with pytest.raises(UnsupportedSchemaError, match="no structural equivalent"):
        structural_schema({"type": "string", "oneOf": []}, {})


def test_converter_inlines_refs_and_lets_the_field_override_the_model() -> None:
    defs = {
        "M": {"type": "object", "description": "model", "properties": {"a": {"type": "string", "title": "A"}}}
    }
    node = {"anyOf": [{"$ref": "#/$defs/M"}, {"type": "null"}], "default": None, "description": "field"}
    assert structural_schema(node, defs) == {
        "description": "field",
        "type": "object",
        "properties": {"a": {"type": "string"}},
    }


def test_module_prints_the_crds_without_writing(capsys: pytest.CaptureFixture[str]) -> None:
    assert crd.main([]) == 0
    printed = capsys.readouterr().out
    assert printed == "---\n".join(render_crd_yaml(resource) for resource in crd.RESOURCES)
    assert all(yaml.safe_load(part)["kind"] == "CustomResourceDefinition" for part in printed.split("---\n"))


# --- every CRD of the group: Workspace, WorkspacePolicy, EffectiveWorkspacePolicy -----------------------

WORKSPACE = crd.WORKSPACE
WORKSPACE_POLICY = crd.WORKSPACE_POLICY
EFFECTIVE_WORKSPACE_POLICY = crd.EFFECTIVE_WORKSPACE_POLICY
RESOURCES = crd.RESOURCES
Resource = crd.Resource

EVERY_RESOURCE = pytest.mark.parametrize("resource", RESOURCES, ids=[r.kind for r in RESOURCES])


def schema_of(resource: Resource) -> dict[str, Any]:
    root: dict[str, Any] = build_crd(resource)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return root


def version_of(resource: Resource) -> dict[str, Any]:
    (version,) = build_crd(resource)["spec"]["versions"]
    assert isinstance(version, dict)
    return version


def test_resources_are_the_six_kinds_each_in_its_own_file() -> None:
    assert [r.kind for r in RESOURCES] == [
        "Workspace",
        "WorkspacePolicy",
        "EffectiveWorkspacePolicy",
        "DockerHost",
        "WorkspaceTemplate",
        "WorkspacePool",
    ]
    assert [r.path.name for r in RESOURCES] == [
        "workspaces.molecule.ai.yaml",
        "workspacepolicies.molecule.ai.yaml",
        "effectiveworkspacepolicies.molecule.ai.yaml",
        "dockerhosts.molecule.ai.yaml",
        "workspacetemplates.molecule.ai.yaml",
        "workspacepools.molecule.ai.yaml",
    ]
    assert WORKSPACE.path == CRD_PATH


@EVERY_RESOURCE
def test_each_crd_file_is_up_to_date(resource: Resource) -> None:
    assert resource.path.exists(), "run: python -m controller.api.crd --write"
    assert resource.path.read_text(encoding="utf-8") == render_crd_yaml(resource), (
        "crds/ is stale; run: python -m controller.api.crd --write"
    )
    assert yaml.safe_load(render_crd_yaml(resource)) == build_crd(resource)


@pytest.mark.parametrize(
    ("resource", "module"),
    [(WORKSPACE, "workspace"), (WORKSPACE_POLICY, "policy"), (EFFECTIVE_WORKSPACE_POLICY, "policy")],
    ids=lambda value: getattr(value, "kind", value),
)
def test_each_crd_file_names_the_module_it_comes_from(resource: Resource, module: str) -> None:
    first = render_crd_yaml(resource).splitlines()[0]
    assert first.startswith(f"# Generated from controller/api/{module}.py by ")


@EVERY_RESOURCE
def test_each_schema_is_structural(resource: Resource) -> None:
    for path, node in walk(schema_of(resource)):
        assert "type" in node, f"{resource.kind}{path} has no type"
        kept = FORBIDDEN_KEYWORDS & node.keys()
        assert not kept, f"{resource.kind}{path} keeps {kept}"
        assert node.get("additionalProperties") is not False, f"{resource.kind}{path}"
        if "properties" in node:
            assert node["type"] == "object", f"{resource.kind}{path}"
            assert set(node.get("required", [])) <= set(node["properties"]), f"{resource.kind}{path}"


def unbounded(node: dict[str, Any], root: str) -> list[str]:
    """The strings, lists and maps below `node` that nothing bounds."""
    found: list[str] = []
    for path, sub in walk(node, root):
        if sub["type"] == "string" and not {"maxLength", "enum", "pattern"} & sub.keys():
            found.append(f"{path} (string)")
        if sub["type"] == "array" and "maxItems" not in sub:
            found.append(f"{path} (array)")
        if isinstance(sub.get("additionalProperties"), dict) and "maxProperties" not in sub:
            found.append(f"{path} (map)")
    return found


@EVERY_RESOURCE
def test_everything_in_each_spec_is_bounded(resource: Resource) -> None:
    # Bounds keep CEL's estimated cost (the schema's and the admission policy's) within the budget.
    assert unbounded(schema_of(resource)["properties"]["spec"], ".spec") == []


def test_the_bound_check_sees_an_unbounded_node() -> None:
    node = {
        "type": "object",
        "properties": {
            "s": {"type": "string"},
            "a": {"type": "array", "items": {"type": "string", "maxLength": 1}},
            "m": {"type": "object", "additionalProperties": {"type": "string", "enum": ["x"]}},
            "ok": {"type": "string", "pattern": "^x$"},
        },
    }
    assert unbounded(node, "") == [".s (string)", ".a (array)", ".m (map)"]


@pytest.mark.parametrize(
    ("resource", "names", "scope"),
    [
        (
            WORKSPACE,
            {
                "kind": "Workspace",
                "listKind": "WorkspaceList",
                "plural": "workspaces",
                "singular": "workspace",
                "shortNames": ["ws"],
                "categories": ["molecule"],
            },
            "Namespaced",
        ),
        (
            WORKSPACE_POLICY,
            {
                "kind": "WorkspacePolicy",
                "listKind": "WorkspacePolicyList",
                "plural": "workspacepolicies",
                "singular": "workspacepolicy",
                "shortNames": ["wspol"],
                "categories": ["molecule"],
            },
            "Cluster",
        ),
        (
            EFFECTIVE_WORKSPACE_POLICY,
            {
                "kind": "EffectiveWorkspacePolicy",
                "listKind": "EffectiveWorkspacePolicyList",
                "plural": "effectiveworkspacepolicies",
                "singular": "effectiveworkspacepolicy",
                "categories": ["molecule"],
            },
            "Cluster",
        ),
    ],
    ids=["Workspace", "WorkspacePolicy", "EffectiveWorkspacePolicy"],
)
def test_each_crd_names_and_scope(resource: Resource, names: dict[str, Any], scope: str) -> None:
    crd_object = build_crd(resource)
    assert crd_object["metadata"]["name"] == f"{names['plural']}.molecule.ai"
    assert crd_object["spec"]["group"] == "molecule.ai"
    assert crd_object["spec"]["scope"] == scope
    assert crd_object["spec"]["names"] == names
    version = version_of(resource)
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)


def test_workspace_policy_has_a_status_subresource_and_its_columns() -> None:
    version = version_of(WORKSPACE_POLICY)
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert list(columns) == ["Tiers", "Docker-Socket", "Namespaces", "Host-Paths", "Images", "Age"]
    assert columns["Tiers"]["jsonPath"] == ".spec.tiers"
    assert columns["Docker-Socket"] == {
        "name": "Docker-Socket",
        "type": "boolean",
        "jsonPath": ".spec.dockerSocket",
    }
    assert columns["Namespaces"] == {
        "name": "Namespaces",
        "type": "integer",
        "jsonPath": ".status.matchedNamespaceCount",
    }
    assert columns["Host-Paths"]["jsonPath"] == ".spec.hostPaths[*].path"
    assert columns["Images"]["jsonPath"] == ".spec.images[*].prefix"
    assert columns["Host-Paths"]["priority"] == columns["Images"]["priority"] == 1
    assert columns["Age"] == {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    # Every column reads a field the schema declares.
    status = schema_of(WORKSPACE_POLICY)["properties"]["status"]["properties"]
    assert {"observedGeneration", "matchedNamespaces", "matchedNamespaceCount", "admitted"} == set(status)
    assert all("default" not in node for _, node in walk(schema_of(WORKSPACE_POLICY)["properties"]["status"]))


def test_workspace_policy_keeps_its_cel_rules() -> None:
    spec = schema_of(WORKSPACE_POLICY)["properties"]["spec"]["properties"]
    host_rules = " ".join(rules(spec["hostPaths"]["items"]["properties"]["path"]))
    for root in ("/etc", "/run", "/root", "/var", "/usr"):
        assert f"'{root}'" in host_rules
    assert "!self.endsWith('/')" in host_rules
    requirement = spec["namespaceSelector"]["properties"]["matchExpressions"]["items"]
    assert rules(requirement) == [
        "self.operator in ['In', 'NotIn'] ? size(self.values) > 0 : size(self.values) == 0"
    ]


def test_the_effective_crd_has_no_cel_rules_and_no_status() -> None:
    version = version_of(EFFECTIVE_WORKSPACE_POLICY)
    assert "subresources" not in version
    assert "status" not in schema_of(EFFECTIVE_WORKSPACE_POLICY)["properties"]
    for path, node in walk(schema_of(EFFECTIVE_WORKSPACE_POLICY)):
        assert "x-kubernetes-validations" not in node, path
    assert "x-kubernetes-validations" not in render_crd_yaml(EFFECTIVE_WORKSPACE_POLICY)
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Default-Images", "Grants", "Age"]


def without_cel(node: dict[str, Any]) -> dict[str, Any]:
    out = {key: value for key, value in node.items() if key != "x-kubernetes-validations"}
    if "properties" in out:
        out["properties"] = {name: without_cel(sub) for name, sub in out["properties"].items()}
    if "items" in out:
        out["items"] = without_cel(out["items"])
    return out


def test_each_effective_grant_carries_every_field_of_a_policy_spec() -> None:
    """The admission policy reads the grants in the effective object: the same schema as a policy's spec."""
    policy_spec = schema_of(WORKSPACE_POLICY)["properties"]["spec"]
    grant = schema_of(EFFECTIVE_WORKSPACE_POLICY)["properties"]["spec"]["properties"]["grants"]["items"]
    assert set(grant["properties"]) == set(policy_spec["properties"]) | {"policy"}
    for name, node in policy_spec["properties"].items():
        assert grant["properties"][name] == without_cel(node), name
    assert grant["required"] == ["namespaceSelector", "policy"]


def test_policy_list_maps_are_keyed_by_required_fields() -> None:
    expected = [
        (WORKSPACE_POLICY, {".spec.hostPaths", ".spec.images"}),
        (EFFECTIVE_WORKSPACE_POLICY, {".spec.grants", ".spec.grants[].hostPaths", ".spec.grants[].images"}),
    ]
    for resource, paths in expected:
        maps = {p: n for p, n in walk(schema_of(resource)) if n.get("x-kubernetes-list-type") == "map"}
        assert set(maps) == paths, resource.kind
        for path, node in maps.items():
            for key in node["x-kubernetes-list-map-keys"]:
                assert key in node["items"]["required"], f"{resource.kind}{path} key {key} must be required"


def test_the_inline_text_budget_is_one_rule_on_the_whole_spec() -> None:
    """Config file contents and env values share one budget, so the largest Workspace fits kubectl's
    last-applied annotation (see tests/unit/test_workspace_size.py)."""
    spec_rules = [rule for rule in rules(schema()["properties"]["spec"]) if "oldSelf" not in rule]
    assert len(spec_rules) == 1
    assert spec_rules[0].endswith(f"<= {INLINE_TEXT_BUDGET}")
    assert "self.config.files.map(f, size(f.content)).sum()" in spec_rules[0]
    assert "self.env.filter(e, has(e.value)).map(e, size(e.value)).sum()" in spec_rules[0]


def test_the_crds_kustomization_lists_every_crd_file_and_nothing_else() -> None:
    kustomization = yaml.safe_load((CRD_PATH.parent / "Kustomization").read_text(encoding="utf-8"))
    assert kustomization["resources"] == [r.path.name for r in RESOURCES]
    on_disk = sorted(p.name for p in CRD_PATH.parent.glob("*.yaml"))
    assert on_disk == sorted(r.path.name for r in RESOURCES)


def test_the_workspace_id_is_immutable_by_a_transition_rule_on_the_spec() -> None:
    (rule,) = [r for r in rules(schema()["properties"]["spec"]) if "oldSelf" in r]
    assert "has(self.workspaceID) == has(oldSelf.workspaceID)" in rule
    assert "self.workspaceID == oldSelf.workspaceID" in rule
    props = schema()["properties"]["spec"]["properties"]
    assert props["workspaceID"]["maxLength"] == 63
    assert props["workspaceID"]["pattern"] == "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
    assert props["adopt"]["default"] is False
