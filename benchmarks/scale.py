"""The controller end to end at scale: its own process against a real kube-apiserver and Docker.

`python -m benchmarks` (BENCH_ONLY=scale) runs it in full, `--quick` small. Scenarios, in the order run:

5. sweep:    M labelled orphans among decoys, removed by a controller with a 1 s sweep interval, against
             a sequential raw `remove(force=True)` loop over as many fresh containers;
1. burst:    N Workspaces in one `kubectl apply`, until the API shows every one Ready (a namespace watch),
             against the same container work done by raw docker-py, sequentially and at the controller's
             Docker concurrency; then the same with the health-checked image;
2. steady:   the Ready fleet left alone: Docker reads per resync, writes, status writes, CPU, RSS;
3. restart:  SIGTERM and start again: until the new process's `workspace_controller_workspace_ready`
             gauges sum to the fleet size, and the Docker writes it made on the way;
4. failure:  `docker kill` of one Workspace's container until the watch shows a status saying so
             (Ready=False, or the container's exit code 137 when it was already running again).

Every figure is printed as it comes; the run fails only on errors (a timeout, a decoy removed), never
on a slow figure. BENCH_PROFILE=<directory> records py-spy profiles of the burst and steady state.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import scale_report as report
from benchmarks.fleet_watch import FleetWatch
from benchmarks.profiling import profiled
from benchmarks.scale_burst import Burst, burst, spec
from benchmarks.scale_fleet import detect_kills, restart, steady
from benchmarks.scale_raw import raw_provision
from benchmarks.scale_sweep import sweep
from benchmarks.stack_session import (
    HEALTHCHECK_RUNTIME,
    NO_HEALTHCHECK_RUNTIME,
    Controller,
    StackSession,
    stack_session,
)
from controller.settings import ControllerSettings

MIB_PER_CONTAINER = 20.0
"""What one running test-agent container holds on the host (its containerd shim most of it), roughly."""
DEFAULTS = ControllerSettings.from_env({})


@dataclass(frozen=True)
class Plan:
    bursts: tuple[int, ...]
    healthcheck_burst: int
    window: float
    resync_seconds: int
    kills: int
    orphans: int
    decoys: int

    @property
    def fleet(self) -> int:
        return sum(self.bursts) + self.healthcheck_burst

    @property
    def peak_containers(self) -> int:
        """The fleet, the fleet before the last burst plus that burst's raw baseline, or the sweep's."""
        return max(self.fleet, sum(self.bursts) + max(self.bursts), self.orphans + self.decoys)


FULL = Plan((100, 300), 100, 60.0, DEFAULTS.resync_seconds, 5, 500, 50)
QUICK = Plan((20,), 20, 20.0, 10, 3, 30, 5)


def fitted(plan: Plan) -> Plan:
    """The plan, scaled down if the machine's available memory cannot hold its peak container count."""
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    available = next(int(line.split()[1]) / 1024 for line in meminfo if line.startswith("MemAvailable:"))
    fits = int(0.8 * available / MIB_PER_CONTAINER)
    print(f"memory: {available:.0f} MiB available, room for ~{fits} containers", end="; ")
    if plan.peak_containers <= fits:
        print(f"the plan peaks at {plan.peak_containers}")
        return plan
    factor = fits / plan.peak_containers
    print(f"the plan peaks at {plan.peak_containers}: every N scaled down by {factor:.2f}")
    return dataclasses.replace(
        plan,
        bursts=tuple(max(1, int(n * factor)) for n in plan.bursts),
        healthcheck_burst=max(1, int(plan.healthcheck_burst * factor)),
        orphans=max(1, int(plan.orphans * factor)),
    )


def bursts(session: StackSession, plan: Plan, controller: Controller, watch: FleetWatch) -> list[Burst]:
    concurrency = DEFAULTS.docker_concurrency
    results = []
    for index, n in enumerate(plan.bursts):
        names = [f"b{index}-{k}" for k in range(n)]
        with profiled(controller.pid, f"burst-{n}"):
            result = burst(session, controller, watch, names, NO_HEALTHCHECK_RUNTIME)
        results.append(result)
        sequential = raw_provision(session, spec(NO_HEALTHCHECK_RUNTIME), n, 1)
        parallel = raw_provision(session, spec(NO_HEALTHCHECK_RUNTIME), n, concurrency)
        report.burst(result, sequential, parallel, concurrency)
    return results


def fleet(session: StackSession, plan: Plan) -> None:
    instance = session.instance("main")
    controller = session.start_controller(instance, WC_RESYNC_SECONDS=str(plan.resync_seconds))
    watch = FleetWatch(session.kubectl)
    try:
        first = bursts(session, plan, controller, watch)[0]
        names = [f"hc-{k}" for k in range(plan.healthcheck_burst)]
        report.checked(burst(session, controller, watch, names, HEALTHCHECK_RUNTIME), first)

        time.sleep(5)  # the last passes' trailing writes, before the idle window
        with profiled(controller.pid, f"steady-{plan.fleet}"):
            idle = steady(controller, plan.window)
        report.steady(idle, plan.fleet, plan.resync_seconds, first.rss_mib, first.n)

        report.restart(restart(controller, plan.fleet), plan.fleet)

        for prefix, n, image in (("b0", first.n, "no health check"), ("hc", len(names), "health-checked")):
            step = max(1, n // plan.kills)
            victims = [f"{prefix}-{k}" for k in range(0, n, step)][: plan.kills]
            report.detection(detect_kills(session, watch, victims), image)
    finally:
        watch.close()


def main(quick: bool = False) -> int:
    plan = fitted(QUICK if quick else FULL)
    print(
        f"scale ({'quick' if quick else 'full'}): bursts {plan.bursts} and {plan.healthcheck_burst} "
        f"health-checked, fleet {plan.fleet}; {os.cpu_count()} CPUs; "
        f"Docker concurrency {DEFAULTS.docker_concurrency} (the default)"
    )
    try:
        with stack_session() as session:
            report.sweep(sweep(session, plan.orphans, plan.decoys))
            fleet(session, plan)
    except Exception as exc:  # an error, not a slow figure: say what and fail
        print(f"scale benchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0
