"""Churn: 300 Workspaces created, updated and deleted concurrently by six clients, twice over, against one
controller process, the real Docker Engine and the real kube-apiserver.

Each client (its own kubectl processes) owns 50 Workspaces in five groups of ten:
  0  created, then deleted while still being provisioned              -> gone, container and volumes gone
  1  created, then updated while still being provisioned              -> Ready, running the update
  2  created, updated once Ready                                      -> Ready, running the update
  3  created, deleted once Ready (deletionPolicy Delete)              -> gone, container and volumes gone
  4  created, deleted once Ready (deletionPolicy Retain)              -> gone, container gone, volumes kept
Afterwards Docker holds exactly one container per live Workspace (no duplicates, no leaks), only the
volumes the policies keep, and no network beyond the one shared network; the controller's resident memory
after the second round is within a quarter of what it was after the first (flat, not growing with work).

The agent image is the test agent without its healthcheck (and under a pinned tag, so IfNotPresent): 300
healthchecks every two seconds would be Docker's load on a small CI machine, not the controller's.
Long-running: marked `long` (`make test` runs it; `-m "not long"` leaves it out).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import docker
import pytest
import yaml

from tests.support.controller_process import ControllerProcess
from tests.support.kubectl import Kubectl
from tests.support.metrics import ControllerMetrics, docker_calls
from tests.support.polling import wait_until
from tests.support.stack import Registry
from tests.support.workspaces import (
    INSTANCE_LABEL,
    MANAGED_LABEL,
    UID_LABEL,
    WorkspaceHarness,
    default_config,
    is_ready,
)

pytestmark = [pytest.mark.e2e, pytest.mark.long, pytest.mark.timeout(1800)]

CLIENTS = 6
PER_CLIENT = 50
GROUPS = 5
CONVERGE_TIMEOUT = 600.0
RSS_GROWTH_LIMIT = 1.25


def manifest(name: str, version: str, policy: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "molecule.ai/v1alpha1",
        "kind": "Workspace",
        "metadata": {"name": name},
        "spec": {
            "image": image,
            "config": default_config(name),
            "env": [{"name": "CHURN", "value": version}],
            "deletionPolicy": policy,
        },
    }


def group_of(name: str) -> int:
    return int(name.rsplit("-", 1)[1]) % GROUPS


def policy_of(name: str) -> str:
    return "Retain" if group_of(name) == 4 else "Delete"


@dataclass
class Client:
    """One of the clients: its own kubectl processes, its own 50 Workspaces."""

    kubectl: Kubectl
    image: str
    names: list[str]
    applies: int = 0
    deletes: int = 0
    uids: dict[str, str] = field(default_factory=dict)

    def group(self, *groups: int) -> list[str]:
        return [n for n in self.names if group_of(n) in groups]

    def apply(self, names: list[str], version: str) -> None:
        documents = [manifest(n, version, policy_of(n), self.image) for n in names]
        self.kubectl.run("apply", "-f", "-", stdin=yaml.safe_dump_all(documents), timeout=300)
        self.applies += len(names)

    def delete(self, names: list[str]) -> None:
        self.kubectl.run("delete", "workspace", "--wait=false", *names, timeout=300)
        self.deletes += len(names)

    def ready(self, names: list[str]) -> bool:
        items = self.kubectl.get_json("workspaces")["items"]
        ready = {i["metadata"]["name"]: i["metadata"]["uid"] for i in items if is_ready(i)}
        self.uids.update({n: uid for n, uid in ready.items() if n in names})
        return set(names) <= set(ready)

    def churn(self) -> None:
        self.apply(self.names, "v1")
        self.apply(self.group(1), "v2")  # still provisioning
        self.delete(self.group(0))  # still provisioning
        wait_until(
            lambda: self.ready(self.group(2, 3, 4)), timeout=CONVERGE_TIMEOUT, interval=1, what="Ready"
        )
        self.apply(self.group(2), "v2")
        self.delete(self.group(3, 4))


@dataclass
class RssSampler:
    """The controller process's resident set size, sampled every half second from /proc."""

    pid: int
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def now(self) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def run(self) -> None:
        while not self._stop.wait(0.5):
            self.samples.append(self.now())

    def stop(self) -> None:
        self._stop.set()


@pytest.fixture
def quiet_agent(docker_client: docker.DockerClient, registry: Registry) -> str:
    """The test agent without a healthcheck, pushed as <prefix>/churn-agent:quiet."""
    ref = f"{registry.prefix}/churn-agent:quiet"
    dockerfile = f"FROM {registry.image('langgraph')}\nHEALTHCHECK NONE\n"
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=ref, rm=True)
    for line in docker_client.images.push(ref, stream=True, decode=True):
        assert "error" not in line, line
    return ref


@pytest.fixture
def sampler(ws: WorkspaceHarness) -> Iterator[Any]:
    started: list[RssSampler] = []

    def start(proc: ControllerProcess) -> RssSampler:
        assert proc.proc is not None
        sampler = RssSampler(proc.proc.pid)
        threading.Thread(target=sampler.run, daemon=True).start()
        started.append(sampler)
        return sampler

    yield start
    for sampler in started:
        sampler.stop()


def owned_containers(client: docker.DockerClient, instance: str) -> list[Any]:
    found: list[Any] = client.containers.list(all=True, filters=owned_by(instance))
    return found


def owned_volume_uids(client: docker.DockerClient, instance: str) -> set[str]:
    return {v.attrs["Labels"][UID_LABEL] for v in client.volumes.list(filters=owned_by(instance))}


def owned_by(instance: str) -> dict[str, list[str]]:
    return {"label": [f"{MANAGED_LABEL}=true", f"{INSTANCE_LABEL}={instance}"]}


def converged(ws: WorkspaceHarness, expected: Mapping[str, str]) -> dict[str, dict[str, Any]] | None:
    """The namespace's Workspaces once exactly `expected` (name -> CHURN value) exist, each Ready at its
    current generation; None until then."""
    items = {i["metadata"]["name"]: i for i in ws.kubectl.get_json("workspaces")["items"]}
    if set(items) != set(expected):
        return None
    if not all(is_ready(i) for i in items.values()):
        return None
    return items


def env_of(container: Any) -> dict[str, str]:
    entries: list[str] = container.attrs["Config"]["Env"] or []
    return dict(e.split("=", 1) for e in entries if "=" in e)


def run_round(
    ws: WorkspaceHarness, image: str, round_: int
) -> tuple[dict[str, dict[str, Any]], list[Client]]:
    names = [[f"r{round_}-c{c}-{i}" for i in range(PER_CLIENT)] for c in range(CLIENTS)]
    clients = [Client(ws.kubectl, image, mine) for mine in names]
    with ThreadPoolExecutor(CLIENTS) as pool:
        for future in [pool.submit(client.churn) for client in clients]:
            future.result()
    expected = {n: "v2" for client in clients for n in client.group(1, 2)}
    live = wait_until(
        lambda: converged(ws, expected), timeout=CONVERGE_TIMEOUT, interval=1, what="the round converged"
    )
    return live, clients


def test_300_workspaces_churned_by_six_clients_end_as_asked_with_nothing_leaked_and_memory_flat(
    ws: WorkspaceHarness, sampler: Any, quiet_agent: str
) -> None:
    networks_before = {n.name for n in ws.docker.networks.list()}
    proc = ws.start_controller()
    metrics = ControllerMetrics.of(proc)
    rss: RssSampler = sampler(proc)
    instance = ws.instance
    retained: set[str] = set()  # uids of deleted Workspaces whose volumes the Retain policy keeps
    settled: list[int] = []
    started = time.monotonic()

    for round_ in (1, 2):
        live, clients = run_round(ws, quiet_agent, round_)
        containers = owned_containers(ws.docker, instance)
        by_uid: dict[str, list[Any]] = {}
        for container in containers:
            by_uid.setdefault(container.labels[UID_LABEL], []).append(container)
        live_uids = {obj["metadata"]["uid"] for obj in live.values()}
        assert set(by_uid) == live_uids, "one container set per live Workspace, none for deleted ones"
        duplicates = {uid: [c.name for c in found] for uid, found in by_uid.items() if len(found) > 1}
        assert not duplicates
        for obj in live.values():
            (container,) = by_uid[obj["metadata"]["uid"]]
            assert container.status == "running"
            assert env_of(container).get("CHURN") == "v2", obj["metadata"]["name"]

        retained.update(c.uids[n] for c in clients for n in c.group(4))
        volume_uids = owned_volume_uids(ws.docker, instance)
        assert volume_uids == live_uids | retained, "volumes: the live ones' and those Retain keeps"
        assert {n.name for n in ws.docker.networks.list()} <= networks_before | {"molecule-monorepo-net"}

        # Make room for the next round: the live ones go too (their volumes with them).
        ws.kubectl.run("delete", "workspaces", "--all", "--wait=false", timeout=300)
        wait_until(
            lambda: not ws.kubectl.get_json("workspaces")["items"],
            timeout=CONVERGE_TIMEOUT,
            interval=1,
            what="every Workspace deleted",
        )
        assert not owned_containers(ws.docker, instance)
        volume_uids = owned_volume_uids(ws.docker, instance)
        assert volume_uids == retained
        settled.append(rss.now())
        print(
            f"\nround {round_}: {sum(c.applies for c in clients)} applies, "
            f"{sum(c.deletes for c in clients)} deletes by {CLIENTS} clients; live {len(live)}, "
            f"containers {len(containers)} (duplicates 0), Workspaces with retained volumes {len(retained)}, "
            f"rss {settled[-1] / 2**20:.0f} MiB"
        )

    samples = metrics.scrape()
    print(
        f"churn: {time.monotonic() - started:.0f}s; "
        f"docker creates {docker_calls(samples, 'create_container'):.0f}, "
        f"removes {docker_calls(samples, 'remove_container'):.0f}; rss min {min(rss.samples) / 2**20:.0f} "
        f"max {max(rss.samples) / 2**20:.0f} MiB, after round 1 {settled[0] / 2**20:.0f}, "
        f"after round 2 {settled[1] / 2**20:.0f} MiB"
    )
    assert proc.running
    assert settled[1] <= settled[0] * RSS_GROWTH_LIMIT, "resident memory grows with work done"
