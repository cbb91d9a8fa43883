"""deploy/kube-state-metrics: the config parses, and every path it reads is in the Workspace schema."""

from __future__ import annotations

from typing import Any, get_args

from controller.api.crd import openapi_schema
from controller.api.workspace import Phase
from tests.support import ksm


def schema() -> dict[str, Any]:
    return openapi_schema()


def in_schema(path: list[str]) -> bool:
    if path[0] == "metadata":
        return path[1:] in (["name"], ["namespace"])
    node = schema()
    for step in path:
        if step == "[]":
            node = node["items"]
            continue
        node = node.get("properties", {}).get(step)
        if node is None:
            return False
    return True


def test_the_config_is_one_resource_for_workspaces() -> None:
    config = ksm.load()
    assert config["kind"] == "CustomResourceStateMetrics"
    (resource,) = config["spec"]["resources"]
    assert resource["groupVersionKind"] == {
        "group": "molecule.ai",
        "version": "v1alpha1",
        "kind": "Workspace",
    }


def test_every_path_is_in_the_workspace_schema() -> None:
    (resource,) = ksm.load()["spec"]["resources"]
    missing = [path for path in ksm.paths(resource) if not in_schema(path)]
    assert missing == []


def test_the_phase_states_are_the_apis_phases() -> None:
    (resource,) = ksm.load()["spec"]["resources"]
    (phase,) = [m for m in resource["metrics"] if m["name"] == "phase"]
    assert phase["each"]["stateSet"]["list"] == list(get_args(Phase))
