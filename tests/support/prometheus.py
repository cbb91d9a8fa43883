"""A real Prometheus for end-to-end tests (Debian's `prometheus` binary), and reading PromQL.

The `prometheus` fixture runs one on loopback scraping a controller's metrics port every second, with
deploy/prometheus's rules loaded. A test module uses it by importing `prometheus_fixture` (under its own
name, so ruff sees a re-export rather than an unused import) and asking for `prometheus`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from tests.support.polling import wait_until
from tests.support.stack import REPO, free_port

RULES = REPO / "deploy" / "prometheus" / "rules.yaml"
PROMETHEUS = shutil.which("prometheus") or "prometheus"  # Debian's prometheus (.ci/run installs it)

# PromQL words that are not metric names.
_NOT_METRICS = {
    "sum", "rate", "increase", "by", "without", "on", "ignoring", "and", "or", "unless", "count", "avg",
    "max", "min", "histogram_quantile", "irate", "delta", "abs", "absent", "group_left", "group_right",
    "label_replace",
}  # fmt: skip

# The series a metric of each type exposes, by suffix of its base name (prometheus_client strips a
# counter's `_total` from the name it describes).
_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers, ranges and groupings ignored)."""
    stripped = re.sub(r'"[^"]*"', "", expr)
    stripped = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", stripped)
    stripped = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", stripped)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", stripped))
    return {w for w in words if w not in _NOT_METRICS and "_" in w}


def exposed_series(module: ModuleType) -> set[str]:
    """The series names the metrics a module defines show on /metrics (histograms as _bucket, _count
    and _sum)."""
    names: set[str] = set()
    for value in vars(module).values():
        if isinstance(value, MetricWrapperBase):
            for described in value.describe():
                names.update(described.name + suffix for suffix in _SUFFIXES[described.type])
    return names


def plain_rules(tmp_path: Path) -> Path:
    """The PrometheusRule's groups as the rule file Prometheus and promtool read."""
    rule = yaml.safe_load(RULES.read_text())
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    return path


@pytest.fixture(name="prometheus")
def prometheus_fixture(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A real Prometheus on loopback scraping a controller's metrics port every second: its URL, and the
    port the controller is to serve its metrics on (WC_METRICS_PORT)."""
    port, target = free_port(), free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(plain_rules(tmp_path))],
        "scrape_configs": [
            {"job_name": "workspace-controller", "static_configs": [{"targets": [f"127.0.0.1:{target}"]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _get(f"{url}/-/ready") is not None, timeout=60, what="Prometheus ready")
        yield url, target
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read()
    except OSError:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body


def _api(url: str, endpoint: str, **params: str) -> list[dict[str, Any]]:
    try:
        address = f"{url}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(address, timeout=10) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # a query Prometheus refuses: its answer says why
        answer = json.loads(exc.read())
    assert isinstance(answer, dict), answer
    assert answer.get("status") == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def query(url: str, promql: str) -> list[dict[str, Any]]:
    """An instant query: each series as {"metric": labels, "value": [time, "value"]}."""
    return _api(url, "query", query=promql)


def query_range(url: str, promql: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
    """A range query: each series as {"metric": labels, "values": [[time, "value"], ...]}."""
    return _api(url, "query_range", query=promql, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step:g}")
