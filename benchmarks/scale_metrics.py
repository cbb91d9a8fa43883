"""The controller's own counters, read from its metrics endpoint and compared between two moments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tests.support.metrics import Samples, scrape

DOCKER_CALLS = "workspace_controller_docker_calls_total"
KUBE_REQUESTS = "rest_client_requests_total"
DOCKER_EVENTS = "workspace_controller_docker_events_total"
INSPECTS = "workspace_controller_container_inspects_total"
READY = "workspace_controller_workspace_ready"

# Docker operations (the adapter's names) that change something; every other one only reads.
WRITES = frozenset(
    {
        "create_container", "put_files", "start_container", "stop_container", "rename_container",
        "disconnect_network", "unpause_container", "remove_container", "ensure_volume", "remove_volume",
        "ensure_network", "pull_image", "remove_image",
    }
)  # fmt: skip


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    """The samples of one counter summed by one of its labels (other labels, e.g. outcome, folded in)."""
    totals: dict[str, float] = {}
    for (sample, labels), value in samples.items():
        if sample == name:
            key = dict(labels).get(label, "")
            totals[key] = totals.get(key, 0.0) + value
    return totals


def ready_sum(samples: Samples) -> float:
    return sum(value for (sample, _), value in samples.items() if sample == READY)


@dataclass(frozen=True)
class Delta:
    docker: Mapping[str, float]  # by operation
    kube: Mapping[str, float]  # by HTTP method
    events: Mapping[str, float]  # Docker events received, by action
    inspects: Mapping[str, float]  # container inspects, by why the list could not answer

    @property
    def docker_total(self) -> float:
        return sum(self.docker.values())

    @property
    def docker_writes(self) -> float:
        return sum(v for op, v in self.docker.items() if op in WRITES)

    @property
    def docker_reads(self) -> float:
        return self.docker_total - self.docker_writes

    def per(self, n: int) -> str:
        """Docker calls by operation ÷ n, as `op=x.xx` pairs."""
        return _pairs(self.docker, n)

    def kube_per(self, n: int) -> str:
        return _pairs(self.kube, n)

    def inspects_per(self, n: int) -> str:
        return _pairs(self.inspects, n)


def _pairs(values: Mapping[str, float], n: int) -> str:
    shown = [f"{key}={value / n:.2f}" for key, value in sorted(values.items()) if value]
    return " ".join(shown) or "none"


def _diff(after: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


class Counters:
    """A scrape of one controller's endpoint; `since` gives what happened after an earlier one."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.samples = scrape(port)

    def since(self, before: Counters | None) -> Delta:
        earlier = before.samples if before is not None else {}
        return Delta(
            _diff(
                by_label(self.samples, DOCKER_CALLS, "operation"),
                by_label(earlier, DOCKER_CALLS, "operation"),
            ),
            _diff(
                by_label(self.samples, KUBE_REQUESTS, "method"), by_label(earlier, KUBE_REQUESTS, "method")
            ),
            _diff(
                by_label(self.samples, DOCKER_EVENTS, "action"), by_label(earlier, DOCKER_EVENTS, "action")
            ),
            _diff(by_label(self.samples, INSPECTS, "reason"), by_label(earlier, INSPECTS, "reason")),
        )
