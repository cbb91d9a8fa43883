"""The WorkspacePool API: its model, its CRD (scale subresource, columns), the sample, the RBAC that lets
the controller read pools and write their status, and the client calls that do it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from controller.api.crd import RESOURCES, WORKSPACE_POOL, WORKSPACE_TEMPLATE, build_crd, render_crd_yaml
from controller.api.pool import (
    POOL_KIND,
    POOL_PLURAL,
    POOL_SHORT_NAMES,
    POOL_SINGULAR,
    WorkspacePool,
    WorkspacePoolSpec,
    WorkspacePoolStatus,
)
from controller.core.causes import Cause
from controller.kube.client import ApiError, KubeClient
from tests.support.scripted_requests import Call, ScriptedRequester

REPO = Path(__file__).resolve().parents[2]


def version() -> dict[str, Any]:
    (only,) = build_crd(WORKSPACE_POOL)["spec"]["versions"]
    assert isinstance(only, dict)
    return only


def schema() -> dict[str, Any]:
    root: dict[str, Any] = version()["schema"]["openAPIV3Schema"]
    return root


# --- the model ----------------------------------------------------------------------------------------


def test_a_pool_names_a_template_and_keeps_one_by_default() -> None:
    pool = WorkspacePool.model_validate(
        {
            "apiVersion": "molecule.ai/v1alpha1",
            "kind": "WorkspacePool",
            "spec": {"templateRef": {"name": "t"}},
        }
    )
    assert pool.spec.template_ref.name == "t"
    assert pool.spec.replicas == 1
    assert pool.status is None
    assert (pool.api_version, pool.kind) == ("molecule.ai/v1alpha1", POOL_KIND)


@pytest.mark.parametrize("replicas", [0, 1, 100])
def test_replicas_within_bounds_are_accepted(replicas: int) -> None:
    assert (
        WorkspacePoolSpec.model_validate({"templateRef": {"name": "t"}, "replicas": replicas}).replicas
        == replicas
    )


@pytest.mark.parametrize("replicas", [-1, 101])
def test_replicas_out_of_bounds_are_refused(replicas: int) -> None:
    with pytest.raises(ValidationError):
        WorkspacePoolSpec.model_validate({"templateRef": {"name": "t"}, "replicas": replicas})


@pytest.mark.parametrize("spec", [{}, {"templateRef": {}}, {"templateRef": {"name": "Not_A_Name"}}])
def test_the_template_ref_is_required_and_a_dns_subdomain_name(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        WorkspacePoolSpec.model_validate(spec)


def test_the_status_reads_what_the_controller_writes_and_writes_it_back() -> None:
    wire = {
        "observedGeneration": 2,
        "replicas": 3,
        "readyReplicas": 2,
        "claimed": 7,
        "selector": "molecule.ai/name=p,molecule.ai/namespace=team",
        "templateGeneration": 4,
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "Filling",
                "message": "2 of 3 warm agents are Ready",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": 2,
            }
        ],
    }
    status = WorkspacePoolStatus.model_validate(wire)
    assert (status.replicas, status.ready_replicas, status.claimed, status.template_generation) == (
        3,
        2,
        7,
        4,
    )
    assert status.to_dict() == wire
    empty = WorkspacePoolStatus()
    assert (empty.replicas, empty.ready_replicas, empty.claimed, empty.selector, empty.conditions) == (
        0,
        0,
        0,
        "",
        (),
    )


def test_the_shipped_sample_is_a_pool_of_a_template_whose_slots_can_be_made() -> None:
    from controller.api.workspace import WorkspaceSpec
    from controller.core.plan import ContainerPlan, ResolvedInputs, plan_workspace
    from controller.core.pools import slot_ref
    from controller.core.templates import resolve, template_of
    from controller.settings import ControllerSettings

    docs = list(yaml.safe_load_all((REPO / "deploy" / "samples" / "workspacepool.yaml").read_text()))
    pools = [WorkspacePool.model_validate(d) for d in docs if d["kind"] == "WorkspacePool"]
    templates = {d["metadata"]["name"]: d for d in docs if d["kind"] == "WorkspaceTemplate"}
    assert [p.spec.replicas for p in pools] == [3]
    template = template_of(templates[pools[0].spec.template_ref.name])
    assert not isinstance(template, Cause)
    spec = resolve({"templateRef": {"name": template.name}}, template)
    assert not isinstance(spec, Cause)
    plan = plan_workspace(
        slot_ref("default", "warm-agent", "5f0c2b1a-aaaa-4bbb-8ccc-dddddddddddd"),
        WorkspaceSpec.model_validate(spec),
        ResolvedInputs(auth_token="stand-in"),
        ControllerSettings(),
    )
    assert isinstance(plan, ContainerPlan), plan


# --- the CRD ------------------------------------------------------------------------------------------


def test_the_pool_is_a_resource_of_its_own_after_the_template() -> None:
    assert RESOURCES.index(WORKSPACE_POOL) == RESOURCES.index(WORKSPACE_TEMPLATE) + 1
    assert WORKSPACE_POOL.path.name == "workspacepools.molecule.ai.yaml"
    assert WORKSPACE_POOL.path.read_text(encoding="utf-8") == render_crd_yaml(WORKSPACE_POOL)
    assert render_crd_yaml(WORKSPACE_POOL).startswith("# Generated from controller/api/pool.py ")


def test_names_and_scope() -> None:
    crd = build_crd(WORKSPACE_POOL)
    assert crd["metadata"]["name"] == "workspacepools.molecule.ai"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"] == {
        "kind": "WorkspacePool",
        "listKind": "WorkspacePoolList",
        "plural": POOL_PLURAL,
        "singular": POOL_SINGULAR,
        "shortNames": list(POOL_SHORT_NAMES),
        "categories": ["molecule"],
    }
    assert (POOL_PLURAL, POOL_SINGULAR, POOL_SHORT_NAMES) == ("workspacepools", "workspacepool", ("wspool",))


def test_status_and_scale_subresources_and_the_paths_they_read_exist() -> None:
    assert version()["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    props = schema()["properties"]
    assert props["spec"]["properties"]["replicas"]["type"] == "integer"
    assert props["status"]["properties"]["replicas"]["type"] == "integer"
    assert props["status"]["properties"]["selector"]["type"] == "string"


def test_only_the_pool_has_a_scale_subresource() -> None:
    for resource in RESOURCES:
        versions = build_crd(resource)["spec"]["versions"]
        has_scale = "scale" in versions[0].get("subresources", {})
        assert has_scale == (resource is WORKSPACE_POOL), resource.kind


def test_replicas_are_bounded_and_defaulted_in_the_schema_and_the_template_ref_required() -> None:
    spec = schema()["properties"]["spec"]
    replicas = spec["properties"]["replicas"]
    assert (replicas["default"], replicas["minimum"], replicas["maximum"]) == (1, 0, 100)
    assert spec["required"] == ["templateRef"]
    assert spec["properties"]["templateRef"]["required"] == ["name"]


def test_the_status_has_no_defaults_and_declares_what_the_controller_writes() -> None:
    status = schema()["properties"]["status"]
    assert set(status["properties"]) == {
        "observedGeneration",
        "replicas",
        "readyReplicas",
        "claimed",
        "selector",
        "templateGeneration",
        "conditions",
    }
    assert "default" not in yaml.safe_dump(status)
    assert status["properties"]["conditions"]["x-kubernetes-list-map-keys"] == ["type"]


def test_printer_columns() -> None:
    columns = {c["name"]: c for c in version()["additionalPrinterColumns"]}
    assert list(columns) == ["Template", "Desired", "Ready", "Claimed", "Status", "Reason", "Age"]
    assert columns["Template"] == {"name": "Template", "type": "string", "jsonPath": ".spec.templateRef.name"}
    assert columns["Desired"] == {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas"}
    assert columns["Ready"] == {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"}
    assert columns["Claimed"] == {
        "name": "Claimed",
        "type": "integer",
        "jsonPath": ".status.claimed",
        "priority": 1,
    }
    assert columns["Status"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Age"] == {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


# --- RBAC ---------------------------------------------------------------------------------------------


def rules_of(path: Path) -> list[dict[str, Any]]:
    for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if (
            doc
            and doc["kind"] in {"ClusterRole", "Role"}
            and doc["metadata"]["name"] == "workspace-controller"
        ):
            rules: list[dict[str, Any]] = doc["rules"]
            return rules
    raise AssertionError(f"no workspace-controller role in {path}")


def verbs(rules: list[dict[str, Any]], resource: str) -> set[str]:
    return {
        verb
        for rule in rules
        if "molecule.ai" in rule["apiGroups"] and resource in rule["resources"]
        for verb in rule["verbs"]
    }


@pytest.mark.parametrize(
    "path",
    [
        "deploy/base/rbac.yaml",
        "deploy/namespaced/rbac.yaml",
        "deploy/helm/workspace-controller/files/rbac.yaml",
    ],
)
def test_the_controller_reads_pools_and_writes_only_their_status(path: str) -> None:
    rules = rules_of(REPO / path)
    assert verbs(rules, "workspacepools") == {"get", "list", "watch"}
    assert verbs(rules, "workspacepools/status") == {"get", "patch", "update"}
    assert "patch" in verbs(rules, "workspaces")  # the binding's annotation


# --- the client ---------------------------------------------------------------------------------------


class ScriptedClient(KubeClient):
    """KubeClient whose `request` is a script (`tests.support.scripted_requests`)."""

    def __init__(self, *replies: Any) -> None:
        self.script = ScriptedRequester(list(replies))
        self.request = self.script.request  # type: ignore[method-assign]

    @property
    def calls(self) -> list[Call]:
        return self.script.calls


def test_patch_pool_status_merges_into_the_status_subresource() -> None:
    client = ScriptedClient({})
    asyncio.run(client.patch_pool_status("team", "p", {"replicas": 2}))
    assert client.calls == [
        Call(
            "PATCH",
            "/apis/molecule.ai/v1alpha1/namespaces/team/workspacepools/p/status",
            {"status": {"replicas": 2}},
            "application/merge-patch+json",
            None,
        )
    ]


def test_patch_pool_status_ignores_a_pool_gone_and_raises_the_rest() -> None:
    asyncio.run(ScriptedClient(ApiError(404, "NotFound", "gone")).patch_pool_status("team", "p", {}))
    with pytest.raises(ApiError) as raised:
        asyncio.run(ScriptedClient(ApiError(500, "InternalError", "x")).patch_pool_status("team", "p", {}))
    assert raised.value.status == 500


def test_annotate_workspace_is_a_merge_patch_with_the_uid_as_precondition() -> None:
    client = ScriptedClient({})
    asyncio.run(client.annotate_workspace("team", "w", "uid-1", {"molecule.ai/pool-slot": "s", "old": None}))
    assert client.calls == [
        Call(
            "PATCH",
            "/apis/molecule.ai/v1alpha1/namespaces/team/workspaces/w",
            {"metadata": {"uid": "uid-1", "annotations": {"molecule.ai/pool-slot": "s", "old": None}}},
            "application/merge-patch+json",
            None,
        )
    ]


@pytest.mark.parametrize("status", [404, 409])
def test_annotate_workspace_raises_when_the_workspace_is_gone_or_replaced(status: int) -> None:
    client = ScriptedClient(ApiError(status, "x", "y"))
    with pytest.raises(ApiError) as raised:
        asyncio.run(client.annotate_workspace("team", "w", "uid-1", {"a": "b"}))
    assert raised.value.status == status


def test_list_pools_reads_every_page_cluster_wide_or_of_one_namespace() -> None:
    client = ScriptedClient(
        {"items": [{"metadata": {"name": "a"}}], "metadata": {"continue": "t"}},
        {"items": [{"metadata": {"name": "b"}}], "metadata": {}},
        {"items": []},
    )
    assert [p["metadata"]["name"] for p in asyncio.run(client.list_pools())] == ["a", "b"]
    assert asyncio.run(client.list_pools("team")) == []
    assert [(c.method, c.path, (c.params or {}).get("continue")) for c in client.calls] == [
        ("GET", "/apis/molecule.ai/v1alpha1/workspacepools", None),
        ("GET", "/apis/molecule.ai/v1alpha1/workspacepools", "t"),
        ("GET", "/apis/molecule.ai/v1alpha1/namespaces/team/workspacepools", None),
    ]
