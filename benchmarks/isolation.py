"""What network isolation costs: provisioning and the agent's endpoint, isolated against open.

In one run on one daemon, with the controller (its own process) and raw docker-py side by side:
- N open Workspaces applied at once, until every endpoint answers; then N isolated ones (AllowList), the
  same; and the isolated topology made by hand with docker-py (the internal network, the agent, the
  gateway on two networks) with the same concurrency, until every endpoint answers.
- Requests to an endpoint, one after another: through an isolated agent's gateway (a relay in
  Python's asyncio) against the open agent's published port.

Printed: seconds and ratios (isolated / open, controller / raw), and request latency (median, p95) with
the relay's ratio.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
import yaml

from benchmarks.docker_cost import RawSdk, bench_settings, objects, raw_plans
from benchmarks.stack_session import NAMESPACE, NO_HEALTHCHECK_RUNTIME, RUN_LABEL, StackSession, stack_session
from controller.core.isolation import EGRESS_ALIAS
from controller.core.plan import ContainerPlan
from controller.docker.create_args import create_args
from controller.docker.parse import ISOLATED_BRIDGE_OPTION
from tests.support import stack as local
from tests.support.polling import wait_until

N = 10
REQUESTS = 300
GATEWAY_IMAGE = "workspace-controller:bench"


def manifest(name: str, network: dict[str, Any] | None) -> str:
    spec: dict[str, Any] = {
        "runtime": NO_HEALTHCHECK_RUNTIME,
        "config": {"files": [{"path": "config.yaml", "content": f"name: {name}\n"}]},
    }
    if network is not None:
        spec["network"] = network
    return yaml.safe_dump(
        {"apiVersion": "molecule.ai/v1alpha1", "kind": "Workspace", "metadata": {"name": name}, "spec": spec}
    )


def answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def endpoints(session: StackSession, names: list[str]) -> dict[str, str] | None:
    items = session.kubectl.get_json("workspaces", "-o", "json")["items"]
    found: dict[str, str] = {
        i["metadata"]["name"]: str((i.get("status") or {}).get("endpoint") or "")
        for i in items
        if i["metadata"]["name"] in names
    }
    if len(found) != len(names) or not all(found.values()):
        return None
    return found if all(answers(e) for e in found.values()) else None


def controller_round(session: StackSession, prefix: str, network: dict[str, Any] | None) -> tuple[float, str]:
    names = [f"{prefix}-{i}" for i in range(N)]
    started = time.perf_counter()
    session.kubectl.apply("---\n".join(manifest(n, network) for n in names))
    found = wait_until(
        lambda: endpoints(session, names), timeout=300, interval=0.1, what=f"{prefix} endpoints"
    )
    return time.perf_counter() - started, found[names[0]]


def raw_isolated(session: StackSession, spec: dict[str, Any], concurrency: int) -> float:
    """The isolated topology by hand with docker-py, from the controller's own plans of the same spec:
    per Workspace the internal network, its volumes, the agent (with its config files), then the
    gateway on the workspace network joined to the internal one; until every endpoint answers. Under an
    instance of their own; removed again (not timed)."""
    settings = bench_settings(
        session.registry,
        concurrency,
        WC_RUNTIME_IMAGES=session.runtime_images,
        WC_GATEWAY_IMAGE=GATEWAY_IMAGE,
    )
    session.instances.append(settings.instance)
    shared = session.docker.networks.create(settings.network, labels={RUN_LABEL: session.run_id}).id
    plans = raw_plans(
        [dataclasses.replace(o, spec=spec) for o in objects(N, session.registry, "raw")], settings
    )
    labels = {RUN_LABEL: session.run_id}

    def one(api: Any, plan: ContainerPlan) -> str:
        gateway = plan.gateway
        assert gateway is not None
        net: str = api.create_network(
            gateway.internal_network,
            driver="bridge",
            internal=True,
            options={ISOLATED_BRIDGE_OPTION: "true"},
            labels=labels,
        )["Id"]
        RawSdk.provision_on(api, plan, net)
        args = create_args(gateway.container, shared)
        created = api.create_container(
            name=args.name,
            host_config=api.create_host_config(**args.host_config),
            networking_config=api.create_networking_config(
                {n: api.create_endpoint_config(**kw) for n, kw in args.endpoints.items()}
            ),
            **args.container,
        )["Id"]
        api.connect_container_to_network(created, net, aliases=[EGRESS_ALIAS])
        api.start(created)
        port = api.inspect_container(created)["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
        endpoint = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers(endpoint), timeout=60, interval=0.05, what=f"{plan.name} answering")
        return net

    clients = [docker.from_env(timeout=60) for _ in range(concurrency)]
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            nets = list(pool.map(lambda i: one(clients[i % concurrency].api, plans[i]), range(N)))
        seconds = time.perf_counter() - started
        api = clients[0].api
        for plan, net in zip(plans, nets, strict=True):
            assert plan.gateway is not None
            for name in (plan.gateway.container.name, plan.name):
                api.remove_container(name, force=True, v=True)
            for volume in plan.volumes:
                api.remove_volume(volume.name, force=True)
            api.remove_network(net)
        api.remove_network(shared)
    finally:
        for client in clients:
            client.close()
    return seconds


def latency(endpoint: str) -> tuple[float, float]:
    """Median and p95 milliseconds of REQUESTS sequential GET /health (one connection each)."""
    samples = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        with urllib.request.urlopen(f"{endpoint}/health", timeout=5) as response:
            response.read()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main() -> int:
    concurrency = 4
    local.run_script("bash", local.HACK / "image" / "build.sh", GATEWAY_IMAGE)
    with stack_session() as session:
        instance = session.instance("isolation")
        session.start_controller(
            instance, WC_GATEWAY_IMAGE=GATEWAY_IMAGE, WC_DOCKER_CONCURRENCY=str(concurrency)
        )
        open_seconds, open_endpoint = controller_round(session, "open", None)
        allow = {"egress": "AllowList", "allow": ["api.example.com:443"]}
        isolated_seconds, isolated_endpoint = controller_round(session, "isolated", allow)
        raw_seconds = raw_isolated(session, yaml.safe_load(manifest("raw", allow))["spec"], concurrency)
        direct = latency(open_endpoint)
        relayed = latency(isolated_endpoint)
        session.kubectl.run("delete", "workspaces", "--all", "--timeout=120s")
    print(f"\n== network isolation ({N} Workspaces at once, namespace {NAMESPACE}) ==")
    print(f"open:      {open_seconds:6.2f} s until every endpoint answers")
    print(f"isolated:  {isolated_seconds:6.2f} s  ({isolated_seconds / open_seconds:.2f}x open)")
    print(f"raw SDK:   {raw_seconds:6.2f} s  isolated by hand, {concurrency} at a time")
    print(f"           controller / raw: {isolated_seconds / raw_seconds:.2f}x")
    print(
        f"endpoint latency over {REQUESTS} requests: direct {direct[0]:.2f} ms median / "
        f"{direct[1]:.2f} ms p95; through the gateway {relayed[0]:.2f} / {relayed[1]:.2f} ms "
        f"({relayed[0] / direct[0]:.2f}x median)"
    )
    return 0
