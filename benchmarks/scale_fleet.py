"""Scenarios 2-4 on a Ready fleet: the idle steady state, a controller restart, and a killed container."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from benchmarks.fleet_watch import FleetWatch, Version
from benchmarks.scale_metrics import Counters, Delta, ready_sum
from benchmarks.stack_session import Controller, StackSession
from tests.support.metrics import scrape


@dataclass(frozen=True)
class Steady:
    window: float
    delta: Delta
    cpu_percent: float
    rss_mib: float


def steady(controller: Controller, window: float) -> Steady:
    before = Counters(controller.port)
    cpu = controller.cpu()
    time.sleep(window)
    cpu = controller.cpu() - cpu
    return Steady(window, Counters(controller.port).since(before), 100 * cpu / window, controller.rss())


@dataclass(frozen=True)
class Restart:
    stop_seconds: float
    up_seconds: float  # process start until its metrics endpoint answers
    seconds: float  # process start until every Workspace's ready gauge is 1
    delta: Delta  # everything the new process did until then
    cpu: float


def restart(controller: Controller, n: int) -> Restart:
    started = time.perf_counter()
    controller.proc.stop(timeout=60)
    stopped = time.perf_counter()
    controller.restart()
    up = time.perf_counter()
    deadline = up + 60 + 1.0 * n
    while ready_sum(scrape(controller.port)) < n:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"after a restart not every one of {n} Workspaces was re-confirmed Ready")
        time.sleep(0.2)
    done = time.perf_counter()
    return Restart(
        stopped - started,
        up - stopped,
        done - stopped,
        Counters(controller.port).since(None),
        controller.cpu(),
    )


@dataclass(frozen=True)
class Detection:
    reported: list[float]  # kill -> first version saying so (Ready not True, or exit code 137)
    ready_false: list[float]  # kill -> first version with Ready not True, for the kills that had one
    kills: int
    raw_die: list[float]  # kill -> the `die` event read by raw docker-py's own event stream: the baseline


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def detect_kills(session: StackSession, watch: FleetWatch, names: list[str]) -> Detection:
    """`docker kill` each Workspace's container in turn; time until the API's status says so, then wait
    until it is Ready again before the next."""
    reported: list[float] = []
    ready_false: list[float] = []
    raw_die: list[float] = []
    for name in names:
        obj = session.kubectl.get_json("workspace", name)
        container_id = obj["status"]["container"]["id"]
        stream = session.docker.api.events(decode=True, filters={"container": container_id, "event": "die"})
        died: list[float] = []
        reader = threading.Thread(target=_first_event, args=(stream, died), daemon=True)
        reader.start()
        killed_at = time.time()
        session.docker.api.kill(container_id)
        seen = watch.wait_version(name, _says_so, after=killed_at, timeout=30)
        if seen is None:
            raise TimeoutError(f"{name}: no status reported its container's kill within 30 s")
        reported.append(seen - killed_at)
        reader.join(timeout=30)
        stream.close()
        if not died:
            raise TimeoutError(f"{name}: raw docker-py saw no die event within 30 s of the kill")
        raw_die.append(died[0] - killed_at)
        back = watch.wait_version(name, lambda v: v.ready, after=seen, timeout=60)
        if back is None:
            raise TimeoutError(f"{name} was not Ready again within 60 s of its container's kill")
        down = watch.wait_version(name, lambda v: not v.ready, after=killed_at, timeout=0)
        if down is not None and down <= back:
            ready_false.append(down - killed_at)
    return Detection(reported, ready_false, len(names), raw_die)


def _first_event(stream: Iterator[Any], seen: list[float]) -> None:
    """Read `stream` until its first event and note when it came."""
    for _ in stream:
        seen.append(time.time())
        return


def _says_so(version: Version) -> bool:
    return not version.ready or version.exit_code == "137"
