"""Reading a controller process's Prometheus endpoint: what it says it did, as numbers to wait on."""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from tests.support.controller_process import ControllerProcess
from tests.support.polling import wait_until

Samples = Mapping[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int, *, timeout: float = 5.0) -> Samples:
    """Every sample of http://127.0.0.1:<port>/metrics, keyed by (sample name, labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as response:
        text = response.read().decode()
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = float(sample.value)
    return samples


def docker_calls(samples: Samples, operation: str) -> float:
    """Docker API calls of one operation in `samples`, whatever their outcome."""
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "workspace_controller_docker_calls_total" and ("operation", operation) in labels
    )


@dataclass(frozen=True)
class ControllerMetrics:
    """The metrics endpoint of one controller process (the port the test harness gave it)."""

    port: int

    @classmethod
    def of(cls, proc: ControllerProcess, *, timeout: float = 30.0) -> ControllerMetrics:
        """The process's endpoint, once it answers (it starts with the process, before anything else)."""
        metrics = cls(int(proc.env["WC_METRICS_PORT"]))
        wait_until(metrics.scrape, timeout=timeout, what=f"metrics on port {metrics.port}")
        return metrics

    def scrape(self) -> Samples:
        return scrape(self.port)

    def value(self, name: str, **labels: str) -> float:
        """One sample's value; 0 when the controller has not exported it (yet)."""
        return self.scrape().get((name, frozenset(labels.items())), 0.0)

    def workspace_gauge(self, metric: str, namespace: str, workspace: str) -> float:
        """A per-Workspace gauge (`workspace_controller_workspace_*{namespace,name}`)."""
        return self.scrape().get((metric, frozenset({("namespace", namespace), ("name", workspace)})), 0.0)

    def sweep_passes(self, outcome: str) -> float:
        return self.value("workspace_controller_sweep_passes_total", outcome=outcome)

    def sweep_skipped(self, reason: str) -> float:
        return self.value("workspace_controller_sweep_skipped_total", reason=reason)

    def sweep_removed(self, kind: str) -> float:
        return self.value("workspace_controller_sweep_removed_total", kind=kind)

    def docker_calls(self, operation: str) -> float:
        return docker_calls(self.scrape(), operation)
