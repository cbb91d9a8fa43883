"""The per-Workspace series a dashboard counts by: a change of phase or reason replaces the old series
(a sum by phase never counts a Workspace twice) and a deleted Workspace leaves none behind."""

from __future__ import annotations

from prometheus_client import REGISTRY

from controller.api.workspace import Condition, WorkspaceStatus
from controller.core.identity import WorkspaceRef
from controller.reconcile.workspace_series import WorkspaceSeries, info_labels

REF = WorkspaceRef(uid="u-series", namespace="team-series", name="agent")


def status(phase: str, ready: str, reason: str, host: str | None = "local") -> WorkspaceStatus:
    return WorkspaceStatus.model_validate(
        {
            "phase": phase,
            "host": host,
            "conditions": [
                Condition(type="Ready", status=ready, reason=reason, message="", last_transition_time="t"),
                Condition(
                    type="Stalled", status="False", reason="Progressing", message="", last_transition_time="t"
                ),
            ],
        }
    )


def samples(metric: str) -> list[dict[str, str]]:
    found = []
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == metric and sample.labels.get("namespace") == REF.namespace:
                found.append(dict(sample.labels, value=str(sample.value)))
    return found


def test_info_labels_default_the_tier_and_leave_unknowns_empty() -> None:
    assert info_labels({"runtime": "langgraph"}, WorkspaceStatus()) == ("", "2", "langgraph", "")
    assert info_labels({"tier": 4, "runtime": 7}, status("Running", "True", "Ready")) == (
        "Running", "4", "", "local"
    )  # fmt: skip


def test_a_change_replaces_the_old_series_and_a_removal_leaves_none() -> None:
    series = WorkspaceSeries()
    series.publish(
        REF, {"tier": 3, "runtime": "hermes"}, status("Creating", "False", "Pulling"), denied=False
    )
    info = samples("workspace_controller_workspace_info")
    assert [(s["phase"], s["tier"], s["runtime"], s["host"]) for s in info] == [
        ("Creating", "3", "hermes", "local")
    ]
    assert {
        (s["type"], s["status"], s["reason"]) for s in samples("workspace_controller_workspace_condition")
    } == {
        ("Ready", "False", "Pulling"),
        ("Stalled", "False", "Progressing"),
    }
    assert [s["value"] for s in samples("workspace_controller_workspace_ready")] == ["0.0"]

    series.publish(REF, {"tier": 3, "runtime": "hermes"}, status("Running", "True", "Ready"), denied=False)
    assert [s["phase"] for s in samples("workspace_controller_workspace_info")] == ["Running"]
    assert {(s["type"], s["reason"]) for s in samples("workspace_controller_workspace_condition")} == {
        ("Ready", "Ready"),
        ("Stalled", "Progressing"),
    }
    assert [s["value"] for s in samples("workspace_controller_workspace_ready")] == ["1.0"]

    series.remove(REF)
    for metric in (
        "workspace_controller_workspace_info",
        "workspace_controller_workspace_condition",
        "workspace_controller_workspace_ready",
        "workspace_controller_workspace_stalled",
        "workspace_controller_workspace_policy_denied",
    ):
        assert samples(metric) == [], metric
    series.remove(REF)  # twice is harmless (a deletion and the loop's forget both remove)


def test_info_labels_take_what_the_spec_resolved_to_from_the_status() -> None:
    # A templated Workspace: its spec names neither; the status says what its template gave it.
    status = WorkspaceStatus(phase="Running", runtime="crewai", tier=3, host="h")
    assert info_labels({"templateRef": "t"}, status) == ("Running", "3", "crewai", "h")
