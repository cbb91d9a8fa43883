"""The per-Workspace series of /metrics: Ready, Stalled and PolicyDenied as 0/1, an info series (phase,
tier, runtime, host) and one series per condition with its status and reason, so a dashboard can count
Workspaces by phase and tier and Stalled ones by reason. A Workspace's old series go when its labels
change and all of them go when it is deleted (no stale phase lingers in a sum)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from controller import metrics
from controller.api.workspace import WorkspaceSpec, WorkspaceStatus
from controller.core.identity import WorkspaceRef
from controller.core.status import is_ready, is_stalled

Labels = tuple[str, ...]


def info_labels(spec: Mapping[str, Any], status: WorkspaceStatus) -> Labels:
    """(phase, tier, runtime, host) as series labels; what is not known yet is ''."""
    phase = status.phase or ""
    # What the spec resolved to (its template's fields included), as the status says; before a status
    # says it, the spec's own or the model's defaults (the schema no longer writes them into the object).
    tier = status.tier or spec.get("tier") or WorkspaceSpec.model_fields["tier"].default
    runtime = status.runtime or spec.get("runtime") or WorkspaceSpec.model_fields["runtime"].default
    return phase, str(tier), runtime if isinstance(runtime, str) else "", status.host or ""


def condition_labels(status: WorkspaceStatus) -> tuple[Labels, ...]:
    """(type, status, reason) of each condition."""
    return tuple((c.type, c.status, c.reason) for c in status.conditions)


class WorkspaceSeries:
    """Which label values each Workspace last exported, to take back the ones that no longer hold."""

    def __init__(self) -> None:
        self._info: dict[tuple[str, str], Labels] = {}
        self._conditions: dict[tuple[str, str], tuple[Labels, ...]] = {}

    def publish(
        self, ref: WorkspaceRef, spec: Mapping[str, Any], status: WorkspaceStatus, *, denied: bool
    ) -> None:
        key = (ref.namespace, ref.name)
        metrics.WORKSPACE_READY.labels(*key).set(is_ready(status))
        metrics.WORKSPACE_STALLED.labels(*key).set(is_stalled(status))
        metrics.WORKSPACE_POLICY_DENIED.labels(*key).set(denied)
        info = info_labels(spec, status)
        old_info = self._info.get(key)
        if old_info != info:
            if old_info is not None:
                _drop(metrics.WORKSPACE_INFO, *key, *old_info)
            metrics.WORKSPACE_INFO.labels(*key, *info).set(1)
            self._info[key] = info
        conditions = condition_labels(status)
        old_conditions = self._conditions.get(key, ())
        for gone in set(old_conditions) - set(conditions):
            _drop(metrics.WORKSPACE_CONDITION, *key, *gone)
        for labels in conditions:
            metrics.WORKSPACE_CONDITION.labels(*key, *labels).set(1)
        self._conditions[key] = conditions

    def remove(self, ref: WorkspaceRef) -> None:
        key = (ref.namespace, ref.name)
        for gauge in (metrics.WORKSPACE_READY, metrics.WORKSPACE_STALLED, metrics.WORKSPACE_POLICY_DENIED):
            _drop(gauge, *key)
        info = self._info.pop(key, None)
        if info is not None:
            _drop(metrics.WORKSPACE_INFO, *key, *info)
        for labels in self._conditions.pop(key, ()):
            _drop(metrics.WORKSPACE_CONDITION, *key, *labels)


def _drop(gauge: Any, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)
