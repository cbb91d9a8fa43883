"""How the scale scenarios print their figures: the figure, its raw baseline where there is one, the ratio."""

from __future__ import annotations

from benchmarks.scale_burst import Burst
from benchmarks.scale_fleet import Detection, Restart, Steady, median
from benchmarks.scale_metrics import Delta
from benchmarks.scale_raw import Baseline
from benchmarks.scale_sweep import Sweep


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def calls(delta: Delta, n: int) -> None:
    docker, kube = delta.docker_total / n, sum(delta.kube.values()) / n
    print(f"  controller Docker calls per Workspace: {docker:.2f}  ({delta.per(n)})")
    print(f"  controller API requests per Workspace: {kube:.2f}  ({delta.kube_per(n)})")
    print(f"  container inspects per Workspace, by why: {delta.inspects_per(n)}")


def cpu(b: Burst) -> None:
    per = b.cpu / b.n * 1000
    print(f"  controller CPU {b.cpu:.1f}s ({per:.0f} ms per Workspace); load average {b.load}")
    print(f"  controller RSS after it: {b.rss_mib:.0f} MiB")


def burst(b: Burst, sequential: Baseline, parallel: Baseline, concurrency: int) -> None:
    print(f"\n[1] burst of {b.n}, no health check: {b.seconds:.1f}s from the apply to all Ready")
    print(f"  (kubectl apply itself: {b.apply_seconds:.1f}s)")
    seq, par = sequential.seconds, parallel.seconds
    print(f"  raw SDK sequential {seq:.1f}s -> ratio {ratio(b.seconds, seq)}")
    print(f"  raw SDK {concurrency} at a time {par:.1f}s -> ratio {ratio(b.seconds, par)}")
    cpu(b)
    calls(b.delta, b.n)
    print(f"  raw SDK Docker calls per Workspace: {sequential.calls_per_workspace:.2f}")


def checked(b: Burst, first: Burst) -> None:
    print(f"\n[1] burst of {b.n} with a health check every 10 s: {b.seconds:.1f}s")
    print("  (Ready once the first check passed: Docker 20.10 runs it one interval after the start)")
    cost = ratio(b.seconds, first.seconds)
    print(f"  without a health check ({first.n}): {first.seconds:.1f}s -> ratio {cost}")
    cpu(b)
    calls(b.delta, b.n)


def steady(s: Steady, fleet: int, resync_seconds: int, rss_first: float, first_n: int) -> None:
    resyncs = s.window / resync_seconds
    d = s.delta
    print(f"\n[2] steady state: {fleet} Ready, {s.window:.0f}s idle, a resync every {resync_seconds}s")
    print(f"  Docker reads {d.docker_reads:.0f} = {d.docker_reads / resyncs:.1f} per resync ({d.per(1)})")
    print(f"  Docker writes {d.docker_writes:.0f}; status writes (PATCH) {d.kube.get('PATCH', 0):.0f}")
    print(f"  API requests: {d.kube_per(1)}")
    events = " ".join(f"{k}={v:.0f}" for k, v in sorted(d.events.items()) if v) or "none"
    print(f"  Docker events received: {events}")
    per = (s.rss_mib - rss_first) * 1024 / (fleet - first_n) if fleet > first_n else float("nan")
    print(f"  controller CPU {s.cpu_percent:.1f}% of one core; RSS {s.rss_mib:.0f} MiB")
    print(f"  RSS {rss_first:.0f} MiB at {first_n} Workspaces: {per:.0f} KiB per extra Workspace")


def restart(r: Restart, fleet: int) -> None:
    print(f"\n[3] restart with {fleet} running: SIGTERM took {r.stop_seconds:.1f}s")
    print(f"  new process: metrics up after {r.up_seconds:.1f}s,", end=" ")
    print(f"all {fleet} ready gauges 1 after {r.seconds:.1f}s")
    d = r.delta
    print(f"  Docker writes {d.docker_writes:.0f}, reads {d.docker_reads:.0f} ({d.per(1)})")
    print(f"  API requests: {d.kube_per(1)}; CPU {r.cpu:.1f}s")


def detection(d: Detection, image: str) -> None:
    print(f"\n[4] docker kill, {d.kills} times, {image}:")
    shown = f"median {median(d.reported):.2f}s, max {max(d.reported, default=float('nan')):.2f}s"
    print(f"  kill -> status reports it (Ready not True or exitCode 137): {shown}")
    raw = median(d.raw_die)
    print(f"  kill -> die event at raw docker-py's event stream (baseline): median {raw:.2f}s,", end=" ")
    print(f"max {max(d.raw_die, default=float('nan')):.2f}s -> ratio {ratio(median(d.reported), raw)}")
    worst = max(d.ready_false, default=float("nan"))
    print(f"  kill -> Ready=False seen in {len(d.ready_false)} of {d.kills}: ", end="")
    print(f"median {median(d.ready_false):.2f}s, max {worst:.2f}s")


def sweep(s: Sweep) -> None:
    print(f"\n[5] sweep of {s.orphans} orphans among {s.decoys} decoys (untouched): {s.seconds:.1f}s")
    print(f"  from the controller's start ({s.up_seconds:.1f}s of it until its metrics answered)")
    without = ratio(s.seconds - s.up_seconds, s.raw_seconds)
    print(
        f"  raw sequential remove(force=True) {s.raw_seconds:.1f}s -> ratio {ratio(s.seconds, s.raw_seconds)}"
    )
    print(f"  (ratio without the start-up: {without})")
