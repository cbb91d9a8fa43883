"""What a warm pool buys: Workspaces bound to warm slots against Workspaces made cold, in one run.

On one daemon, with the controller (its own process) and raw docker-py side by side:
- cold: N Workspaces of a template (no pool), applied at once, until every one reports Ready;
- warm: a WorkspacePool of N filled first (its fill time printed), then N Workspaces of the same
  template applied at once, until every one reports Ready;
- raw SDK, the same work by hand with docker-py from the controller's own plans: cold is volumes,
  create, config files and start per container; a claim is the rename the controller does when it
  binds a Workspace to a slot made with the token the Workspace is then given (4 at a time); with the
  token file's copy too, what a bind costs when the Workspace's token is another (printed apart).

Printed: seconds until all are Ready and each Workspace's apply -> Ready (median, p95), warm / cold,
and controller / raw for both. The target of a claim: <= 1 s, and <= 0.2x a cold create.
"""

from __future__ import annotations

import dataclasses
import secrets
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
import yaml

from benchmarks.docker_cost import RawSdk, bench_settings, objects, raw_plans
from benchmarks.stack_session import NAMESPACE, NO_HEALTHCHECK_RUNTIME, RUN_LABEL, StackSession, stack_session
from controller.api.workspace import AUTH_TOKEN_FILE
from controller.core.naming import warm_name
from controller.docker.archive import build_tar
from controller.port.values import File
from tests.support.polling import wait_until
from tests.support.watch import ready_at, watching

N = 50
SINGLES = 10
"""Cold creates one at a time (each waits for its agent's first health check)."""
CONCURRENCY = 4  # the raw side uses as many clients
API = "molecule.ai/v1alpha1"


def manifest(kind: str, name: str, spec: dict[str, Any]) -> str:
    return yaml.safe_dump({"apiVersion": API, "kind": kind, "metadata": {"name": name}, "spec": spec})


def template(name: str) -> str:
    spec = {
        "template": {
            "runtime": NO_HEALTHCHECK_RUNTIME,
            "config": {"files": [{"path": "config.yaml", "content": "name: agent\n"}]},
            "authToken": {"generate": True},
        }
    }
    return yaml.safe_dump(
        {"apiVersion": API, "kind": "WorkspaceTemplate", "metadata": {"name": name}, "spec": spec}
    )


def pool(name: str, template_name: str, replicas: int) -> str:
    spec = {"templateRef": {"name": template_name}, "replicas": replicas}
    return yaml.safe_dump(
        {"apiVersion": API, "kind": "WorkspacePool", "metadata": {"name": name}, "spec": spec}
    )


def workspaces(prefix: str, template_name: str) -> tuple[list[str], str]:
    names = [f"{prefix}-{i}" for i in range(N)]
    docs = [manifest("Workspace", n, {"templateRef": {"name": template_name}}) for n in names]
    return names, "---\n".join(docs)


def round_(session: StackSession, prefix: str, template_name: str) -> tuple[float, list[float]]:
    """Apply N Workspaces at once (one `kubectl apply`); seconds from the apply's start until all are
    Ready, and until each one is, as a watch of the namespace brings them (the apply's own time, about
    0.3 s for 50, is in every figure)."""
    names, manifest = workspaces(prefix, template_name)
    with watching(session.kubectl, None) as watch:
        applied = time.time()  # a fast claim can be Ready before the apply of all N returns
        session.kubectl.apply(manifest)
        seen = ready_at(watch, dict.fromkeys(names, applied), timeout=600)
    return max(seen.values()), sorted(seen.values())


def one_by_one(session: StackSession, prefix: str, template_name: str, count: int) -> list[float]:
    """Apply `count` Workspaces one after another, each once the one before is Ready: each one's seconds
    from its apply's start until the watch brings it Ready (what one claim, or one cold create, costs)."""
    times = []
    with watching(session.kubectl, None) as watch:
        for i in range(count):
            name = f"{prefix}-{i}"
            applied = time.time()
            session.kubectl.apply(manifest("Workspace", name, {"templateRef": {"name": template_name}}))
            times.append(ready_at(watch, {name: applied}, timeout=300)[name])
    return sorted(times)


def pool_ready(session: StackSession, name: str, replicas: int) -> bool:
    obj: dict[str, Any] = session.kubectl.get_json("workspacepool", name, "-o", "json")
    return bool((obj.get("status") or {}).get("readyReplicas") == replicas)


def raw(session: StackSession) -> tuple[float, float, float]:
    """The same work by hand: N cold provisions; then N claims of those containers, made warm first
    (renamed `-warm`, not timed): each renamed back; then N more such claims with the token file copied
    in too. Seconds of each, CONCURRENCY at a time."""
    settings = bench_settings(session.registry, CONCURRENCY, WC_RUNTIME_IMAGES=session.runtime_images)
    session.instances.append(settings.instance)
    network = session.docker.networks.create(settings.network, labels={RUN_LABEL: session.run_id}).id
    spec = {
        "runtime": NO_HEALTHCHECK_RUNTIME,
        "config": {"files": [{"path": "config.yaml", "content": "name: agent\n"}]},
    }
    plans = raw_plans(
        [dataclasses.replace(o, spec=spec) for o in objects(N, session.registry, "raw")], settings
    )
    clients = [docker.from_env(timeout=60) for _ in range(CONCURRENCY)]
    token = build_tar({AUTH_TOKEN_FILE: File(secrets.token_urlsafe(32).encode(), 0o600)})
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENCY) as workers:
            list(
                workers.map(
                    lambda i: RawSdk.provision_on(clients[i % CONCURRENCY].api, plans[i], network), range(N)
                )
            )
        cold = time.perf_counter() - started
        api = clients[0].api
        ids = [str(api.inspect_container(plan.name)["Id"]) for plan in plans]
        for plan, container_id in zip(plans, ids, strict=True):
            api.rename(container_id, warm_name(plan.workspace.workspace_id))

        def claim(i: int, copy: bool) -> None:
            client = clients[i % CONCURRENCY].api
            client.rename(ids[i], plans[i].name)
            if copy:
                client.put_archive(ids[i], "/configs", token)

        timed = []
        for copy in (False, True):
            if copy:
                for plan, container_id in zip(plans, ids, strict=True):
                    api.rename(container_id, warm_name(plan.workspace.workspace_id))
            started = time.perf_counter()
            with ThreadPoolExecutor(CONCURRENCY) as workers:
                list(workers.map(claim, range(N), [copy] * N))
            timed.append(time.perf_counter() - started)
    finally:
        for client in clients:
            client.close()
    return cold, timed[0], timed[1]


def summary(times: list[float]) -> str:
    p95 = times[max(0, int(len(times) * 0.95) - 1)]
    return f"median {statistics.median(times):.2f} s, p95 {p95:.2f} s"


def main() -> int:
    with stack_session() as session:
        instance = session.instance("pools")
        session.start_controller(instance, WC_DOCKER_CONCURRENCY=str(CONCURRENCY))
        session.kubectl.apply(template("agent"))
        cold_all, cold_each = round_(session, "cold", "agent")
        session.kubectl.run("delete", "workspaces", "--all", "--timeout=300s")
        cold_one = one_by_one(session, "cold-one", "agent", SINGLES)
        session.kubectl.run("delete", "workspaces", "--all", "--timeout=300s")

        session.kubectl.apply(pool("warm", "agent", N))
        started = time.perf_counter()
        wait_until(lambda: pool_ready(session, "warm", N), timeout=600, interval=0.2, what="pool filled")
        fill = time.perf_counter() - started
        warm_all, warm_each = round_(session, "warm", "agent")
        wait_until(lambda: pool_ready(session, "warm", N), timeout=600, interval=0.2, what="pool refilled")
        warm_one = one_by_one(session, "warm-one", "agent", N)
        session.kubectl.run("delete", "workspacepools", "--all", "--timeout=120s")
        session.kubectl.run("delete", "workspaces", "--all", "--timeout=300s")
        raw_cold, raw_claim, raw_copy = raw(session)
    print(f"\n== warm pools ({N} Workspaces at once, namespace {NAMESPACE}) ==")
    print(f"cold create:  {cold_all:6.2f} s until all Ready; each apply -> Ready {summary(cold_each)}")
    print(f"pool fill:    {fill:6.2f} s for {N} warm slots (in the background, before any claim)")
    print(f"warm claim:   {warm_all:6.2f} s until all Ready; each apply -> Ready {summary(warm_each)}")
    print(
        f"              warm / cold: {warm_all / cold_all:.2f}x all, "
        f"{statistics.median(warm_each) / statistics.median(cold_each):.2f}x median"
    )
    ratio = statistics.median(warm_one) / statistics.median(cold_one)
    print(f"one at a time: cold create {summary(cold_one)} ({SINGLES} of them)")
    print(f"               claim {summary(warm_one)} ({N} of them): {ratio:.2f}x cold, median")
    print(
        f"raw SDK:      cold {raw_cold:.2f} s, claim (rename) {raw_claim:.2f} s, "
        f"with the token's copy {raw_copy:.2f} s, {CONCURRENCY} at once"
    )
    print(
        f"              controller / raw: cold {cold_all / raw_cold:.2f}x, claim {warm_all / raw_claim:.2f}x"
    )
    return 0
