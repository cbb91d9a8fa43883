"""Scenario 1, the burst: N Workspaces in one `kubectl apply`, timed until the last is Ready in the API."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from benchmarks.fleet_watch import FleetWatch
from benchmarks.procstat import load_average
from benchmarks.scale_metrics import Counters, Delta
from benchmarks.stack_session import Controller, StackSession
from tests.support.workspaces import default_config, workspace_manifest

SETTLE = 2.0
"""Seconds after the last Ready before the counters are read: the last passes' trailing writes."""


def spec(runtime: str) -> dict[str, Any]:
    """What every benchmark Workspace asks for (the raw baseline plans the same spec)."""
    return {"runtime": runtime, "config": default_config("bench")}


@dataclass(frozen=True)
class Burst:
    n: int
    seconds: float
    apply_seconds: float
    cpu: float
    delta: Delta
    load: str
    rss_mib: float
    """The controller's RSS once the burst's trailing writes are done."""


def burst(
    session: StackSession, controller: Controller, watch: FleetWatch, names: list[str], runtime: str
) -> Burst:
    manifest = "---\n".join(workspace_manifest(name, spec(runtime)) for name in names)
    before = Counters(controller.port)
    cpu = controller.cpu()
    started = time.time()
    session.kubectl.apply(manifest)
    applied = time.time()
    ready_at = watch.wait_all_ready(names, timeout=120 + 2.0 * len(names))
    cpu = controller.cpu() - cpu
    load = load_average()
    time.sleep(SETTLE)
    delta = Counters(controller.port).since(before)
    rss = controller.rss()
    return Burst(len(names), ready_at - started, applied - started, cpu, delta, load, rss)
