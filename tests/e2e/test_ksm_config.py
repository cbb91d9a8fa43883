"""deploy/kube-state-metrics against a real Workspace: every series the dashboard reads has a value."""

from __future__ import annotations

import pytest

from tests.support import ksm
from tests.support.workspaces import WorkspaceHarness, workspace_manifest

pytestmark = pytest.mark.e2e


def test_the_config_reads_runtime_tier_conditions_and_phase_from_a_ready_workspace(
    ws: WorkspaceHarness,
) -> None:
    ws.start_controller()
    ws.apply(workspace_manifest("observed", {"tier": 1}))
    obj = ws.wait_ready("observed")
    (resource,) = ksm.load()["spec"]["resources"]
    series = {
        (name, tuple(sorted(labels.items()))): value for name, labels, value in ksm.samples(resource, obj)
    }
    by_name: dict[str, list[tuple[dict[str, str], float]]] = {}
    for (name, labels), value in series.items():
        by_name.setdefault(name, []).append((dict(labels), value))
    prefix = "kube_customresource_molecule_workspace"

    ((info, _),) = by_name[f"{prefix}_info"]
    assert info["namespace"] == ws.namespace
    assert info["name"] == "observed"
    assert info["runtime"] == "langgraph"
    assert info["host"] == obj["status"]["host"]
    assert info["workspace_id"] == obj["status"]["workspaceID"]
    assert [value for _, value in by_name[f"{prefix}_tier"]] == [1.0]
    conditions = {
        labels["type"]: (labels["reason"], value) for labels, value in by_name[f"{prefix}_condition"]
    }
    assert conditions["Ready"] == ("ContainerRunning", 1.0)
    assert conditions["Synced"] == ("ReconcileSuccess", 1.0)
    phases = {labels["phase"]: value for labels, value in by_name[f"{prefix}_phase"]}
    assert phases["Running"] == 1.0
    assert sum(phases.values()) == 1.0
