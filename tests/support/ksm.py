"""What kube-state-metrics' CustomResourceState would export for one object, from deploy/'s config.

A reader of the subset of the config format deploy/kube-state-metrics uses (Info, Gauge with a list
path, labelsFromPath and valueFrom, StateSet), to check that every path the config names resolves on
a real Workspace and yields the values a dashboard expects. It is not kube-state-metrics: which
metrics exist and what they are called is what it shows, not how the exporter formats them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "kube-state-metrics" / "workspace-state.yaml"

Sample = tuple[str, dict[str, str], float]


def load() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    return data


def resolve(obj: Any, path: Sequence[str]) -> Any:
    """The value at `path` in `obj`; None where it does not exist."""
    for step in path:
        if not isinstance(obj, dict) or step not in obj:
            return None
        obj = obj[step]
    return obj


def _value(raw: Any) -> float:
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return 1.0 if raw.lower() == "true" else 0.0
    return float(raw)


def _labels(obj: Any, spec: dict[str, list[str]]) -> dict[str, str]:
    return {name: str(value) for name, path in spec.items() if (value := resolve(obj, path)) is not None}


def samples(resource: dict[str, Any], obj: dict[str, Any]) -> list[Sample]:
    """The series the config's `resource` makes of `obj` (unresolvable paths give no series)."""
    common = _labels(obj, resource.get("labelsFromPath", {}))
    prefix = resource["metricNamePrefix"]
    out: list[Sample] = []
    for metric in resource["metrics"]:
        name = f"{prefix}_{metric['name']}"
        each = metric["each"]
        if each["type"] == "Info":
            out.append((name, {**common, **_labels(obj, each["info"]["labelsFromPath"])}, 1.0))
        elif each["type"] == "Gauge":
            gauge = each["gauge"]
            found = resolve(obj, gauge["path"])
            elements = found if isinstance(found, list) else [found] if found is not None else []
            for element in elements:
                raw = resolve(element, gauge["valueFrom"]) if "valueFrom" in gauge else element
                if raw is None or (isinstance(raw, str) and raw.lower() not in ("true", "false")):
                    continue  # kube-state-metrics skips what is not a number (e.g. Unknown)
                labels = {**common, **_labels(element, gauge.get("labelsFromPath", {}))}
                out.append((name, labels, _value(raw)))
        elif each["type"] == "StateSet":
            state = each["stateSet"]
            current = resolve(obj, state["path"])
            for option in state["list"]:
                out.append((name, {**common, state["labelName"]: option}, 1.0 if option == current else 0.0))
        else:
            raise AssertionError(f"a metric type this reader does not know: {each['type']}")
    return out


def paths(resource: dict[str, Any]) -> list[list[str]]:
    """Every object path the resource's config reads (element-relative ones under their list's path)."""
    found = list(resource.get("labelsFromPath", {}).values())
    for metric in resource["metrics"]:
        each = metric["each"]
        if each["type"] == "Info":
            found += list(each["info"]["labelsFromPath"].values())
        elif each["type"] == "Gauge":
            gauge = each["gauge"]
            found.append(gauge["path"])
            inner = list(gauge.get("labelsFromPath", {}).values()) + (
                [gauge["valueFrom"]] if "valueFrom" in gauge else []
            )
            found += [[*gauge["path"], "[]", *p] for p in inner]
        elif each["type"] == "StateSet":
            found.append(each["stateSet"]["path"])
    return found
