"""spec.updateStrategy StartFirst through the real stack: the agent answers throughout a replacement,
both on status.endpoint (followed as a client follows it) and on its name on the workspace network, polled
every 100 ms; a replacement that exits is removed at once and the old container keeps serving."""

from __future__ import annotations

import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from docker.models.containers import Container

from tests.support.polling import wait_until
from tests.support.workspaces import WorkspaceHarness, condition, is_ready, workspace_manifest

pytestmark = pytest.mark.e2e

PROBE = (
    "while :; do if wget -q -O /dev/null http://$0:8000/health; then echo ok; else echo FAIL; fi; "
    "usleep 100000; done"
)


class EndpointPoller:
    """A client of status.endpoint: reads it every 0.3 s, GETs /health on it every 0.1 s."""

    def __init__(self, ws: WorkspaceHarness, name: str) -> None:
        self.ws, self.name = ws, name
        self.endpoint = str(ws.get(name)["status"]["endpoint"])
        self.counts: Counter[str] = Counter()
        self.endpoints = {self.endpoint}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._follow), threading.Thread(target=self._poll)]

    def _follow(self) -> None:
        while not self._stop.wait(0.3):
            endpoint = (self.ws.get(self.name).get("status") or {}).get("endpoint")
            if endpoint:
                self.endpoint = str(endpoint)
                self.endpoints.add(self.endpoint)

    def _poll(self) -> None:
        while not self._stop.wait(0.1):
            try:
                with urllib.request.urlopen(f"{self.endpoint}/health", timeout=2) as response:
                    self.counts["ok" if response.status == 200 else "FAIL"] += 1
            except OSError:
                self.counts["FAIL"] += 1

    def __enter__(self) -> EndpointPoller:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


@contextmanager
def network_prober(ws: WorkspaceHarness, agent: Container) -> Iterator[Container]:
    """A container on the workspace network GETting http://<the Workspace's name>:8000 every 100 ms."""
    network = next(iter(agent.attrs["NetworkSettings"]["Networks"]))
    prober = ws.docker.containers.run(
        agent.image.id,
        entrypoint=["/bin/sh", "-c", PROBE, agent.name],
        network=network,
        detach=True,
        labels={"test": "start-first-prober"},
    )
    try:
        yield prober
    finally:
        prober.remove(force=True)


def probe_counts(prober: Container) -> Counter[str]:
    """ok / FAIL per poll (wget's own error lines, on stderr, are not counted)."""
    return Counter(line for line in prober.logs(stderr=False).decode().splitlines() if line in ("ok", "FAIL"))


def only_one_container(ws: WorkspaceHarness, name: str) -> bool:
    return len(ws.containers(name)) == 1


def test_the_agent_answers_throughout_a_start_first_replacement(ws: WorkspaceHarness) -> None:
    ws.start_controller()
    ws.apply(workspace_manifest("sf", {"updateStrategy": "StartFirst", "env": [{"name": "V", "value": "1"}]}))
    first = ws.wait_ready("sf")
    old = ws.container("sf")
    with network_prober(ws, old) as prober, EndpointPoller(ws, "sf") as poller:
        wait_until(lambda: probe_counts(prober)["ok"] >= 5, timeout=30, what="the network prober answered")
        ws.patch_spec("sf", {"env": [{"name": "V", "value": "2"}]})
        ws.wait_for(
            "sf",
            lambda o: is_ready(o) and o["status"]["container"]["id"] != first["status"]["container"]["id"],
            "Ready on the new container",
        )
        ws.wait_for("sf", lambda o: only_one_container(ws, "sf"), "the old container retired")
        polled = poller.counts["ok"]
        wait_until(lambda: poller.counts["ok"] >= polled + 5, timeout=30, what="polls of the new container")
        network = probe_counts(prober)
    endpoints = len(poller.endpoints)
    print(f"StartFirst: endpoint {dict(poller.counts)} over {endpoints} endpoints; network {dict(network)}")
    assert poller.counts["FAIL"] == 0
    assert poller.counts["ok"] > 20
    assert len(poller.endpoints) == 2  # the client followed the switch
    assert network["FAIL"] == 0
    assert network["ok"] > 20
    new = ws.container("sf")
    assert new.id != old.id
    assert new.name == old.name
    assert "V=2" in new.attrs["Config"]["Env"]
    reasons = ws.event_reasons("sf")
    for reason in ("RollingOut", "RolledOut", "Retired"):
        assert reason in reasons


@pytest.mark.parametrize(
    ("broken", "why"),
    [
        ({"name": "AGENT_EXIT", "value": "3"}, "exit code 3"),
        ({"name": "AGENT_UNHEALTHY", "value": "1"}, "health check"),
    ],
    ids=["exits", "never-healthy"],
)
def test_a_broken_replacement_is_removed_and_the_old_one_keeps_serving(
    ws: WorkspaceHarness, broken: dict[str, str], why: str
) -> None:
    ws.start_controller()
    spec: dict[str, Any] = {"updateStrategy": "StartFirst", "progressDeadlineSeconds": 20}
    ws.apply(workspace_manifest("sf-broken", spec))
    first = ws.wait_ready("sf-broken")
    old = ws.container("sf-broken")
    with network_prober(ws, old) as prober, EndpointPoller(ws, "sf-broken") as poller:
        ws.patch_spec("sf-broken", {"env": [broken]})
        failed = ws.wait_for(
            "sf-broken",
            lambda o: (condition(o, "Synced") or {}).get("reason") == "RolloutFailed",
            "Synced=False/RolloutFailed",
        )
        ws.wait_for("sf-broken", lambda o: only_one_container(ws, "sf-broken"), "the replacement removed")
        network = probe_counts(prober)
    message = (condition(failed, "Synced") or {})["message"]
    assert "the previous container keeps serving" in message
    assert why in message
    assert is_ready(ws.get("sf-broken"))
    assert ws.container("sf-broken").id == old.id == first["status"]["container"]["id"]
    assert poller.counts["FAIL"] == 0
    assert network["FAIL"] == 0
    assert network["ok"] > 0
    assert "RolloutFailed" in ws.event_reasons("sf-broken")
