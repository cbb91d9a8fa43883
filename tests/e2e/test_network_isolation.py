"""Network isolation against the real Docker Engine: an isolated agent (spec.network egress AllowList or
None) sits alone on an internal network of its own, with no address on the host, behind a gateway made
from the controller's image. From inside the agent, the tests try what it must not reach: an HTTP server
of this machine's (listening on every address, so reachable from any container on a bridge with an
address on the host), another agent directly, its own loopback; and what it may: an allow-listed agent,
through the gateway's proxy. An open agent on the same machine reaches the same server, which shows the
forbidden address is there to be reached."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import docker
import pytest
from docker.models.containers import Container

from controller.core.isolation import gateway_name, internal_network_name
from controller.core.labels import UID_LABEL
from controller.core.policy import isolation_message
from controller.settings import DEFAULT_NETWORK
from tests.support.kubectl import KubectlError
from tests.support.polling import wait_until
from tests.support.stack import free_port
from tests.support.workspaces import (
    WorkspaceHarness,
    agent_get,
    short_id,
    wait_agent,
    workspace_manifest,
)

pytestmark = pytest.mark.e2e

SECRET_PAGE = b"this machine's own page\n"


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(SECRET_PAGE)))
        self.end_headers()
        self.wfile.write(SECRET_PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def machine_page() -> Iterator[int]:
    """An HTTP server of this machine's on every address (the Docker host's): its port."""
    server = http.server.ThreadingHTTPServer(("0.0.0.0", free_port()), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def isolating(ws: WorkspaceHarness, controller_image: str) -> WorkspaceHarness:
    ws.start_controller(WC_GATEWAY_IMAGE=controller_image)
    return ws


def host_address(client: docker.DockerClient) -> str:
    """The Docker host's address on the workspace network."""
    network = client.networks.get(DEFAULT_NETWORK)
    gateway: str = network.attrs["IPAM"]["Config"][0]["Gateway"]
    return gateway


def run_in(container: Container, script: str) -> tuple[int, str]:
    result = container.exec_run(["/bin/sh", "-c", script])
    return result.exit_code, result.output.decode(errors="replace")


def agent_of(ws: WorkspaceHarness, name: str) -> Container:
    container: Container = ws.docker.containers.get(f"ws-{short_id(ws.uid(name))}")
    return container


def networks_of(container: Container) -> set[str]:
    container.reload()
    return set(container.attrs["NetworkSettings"]["Networks"])


def test_an_isolated_agent_reaches_what_its_allow_list_names_and_nothing_else(
    isolating: WorkspaceHarness, machine_page: int
) -> None:
    ws = isolating
    ws.apply(workspace_manifest("peer"))
    ws.apply(workspace_manifest("other"))
    peer_name = f"ws-{short_id(ws.uid('peer'))}"
    ws.apply(
        workspace_manifest("boxed", {"network": {"egress": "AllowList", "allow": [f"{peer_name}:8000"]}})
    )
    boxed = ws.wait_ready("boxed")
    ws.wait_ready("peer")
    ws.wait_ready("other")
    host = host_address(ws.docker)

    # Reached through its gateway: the endpoint answers, and the platform's name for it resolves there.
    wait_agent(boxed["status"]["endpoint"])
    agent = agent_of(ws, "boxed")
    gateway = ws.docker.containers.get(gateway_name(agent.name))
    assert networks_of(agent) == {internal_network_name(agent.name)}
    assert not agent.attrs["NetworkSettings"]["Ports"] or not any(
        agent.attrs["NetworkSettings"]["Ports"].values()
    )
    assert networks_of(gateway) == {DEFAULT_NETWORK, internal_network_name(agent.name)}
    peer = agent_of(ws, "peer")
    code, out = run_in(peer, f"timeout 5 wget -q -O- http://{agent.name}:8000/health")
    assert (code, out.strip()) == (0, "ok"), out

    # The control: an open agent reaches this machine's page.
    code, out = run_in(peer, f"timeout 5 wget -q -O- http://{host}:{machine_page}/")
    assert (code, out.encode()) == (0, SECRET_PAGE), out

    # Allowed: the listed agent, through the proxy the agent's environment names.
    code, out = run_in(
        agent, f'http_proxy="$HTTP_PROXY" timeout 5 wget -q -O- http://{peer_name}:8000/health'
    )
    assert (code, out.strip()) == (0, "ok"), out

    # Refused by the proxy: anything not listed (another agent, this machine's page).
    other_name = f"ws-{short_id(ws.uid('other'))}"
    for target in (f"{other_name}:8000/health", f"{host}:{machine_page}/"):
        code, out = run_in(agent, f'http_proxy="$HTTP_PROXY" timeout 5 wget -O- http://{target} 2>&1')
        assert code != 0, out
        assert "403" in out, out

    # No way round the proxy: no route to this machine, to another agent, or beyond; its own loopback
    # has nothing of the machine's.
    other_ip = agent_of(ws, "other").attrs["NetworkSettings"]["Networks"][DEFAULT_NETWORK]["IPAddress"]
    for target in (f"{host}:{machine_page}", f"{other_ip}:8000", f"127.0.0.1:{machine_page}", "1.1.1.1:80"):
        code, out = run_in(agent, f"timeout 3 wget -Y off -O- http://{target}/ 2>&1")
        assert code != 0, f"{target}: {out}"
        assert SECRET_PAGE.decode() not in out, f"{target}: {out}"
    code, out = run_in(agent, f"nc -w 3 {host} {machine_page} </dev/null && echo CONNECTED")
    assert "CONNECTED" not in out, out
    # Names beyond its network are asked of no one (Docker's resolver forwards only to an unrouted address).
    assert agent.attrs["HostConfig"]["Dns"] == ["192.0.2.1"]

    # The gateway logs its decisions by host and port.
    logs = gateway.logs().decode()
    assert f"allowed request to {peer_name}:8000" in logs
    assert f"denied request to {other_name}:8000" in logs


def test_egress_none_reaches_nothing_and_turning_isolation_off_puts_the_agent_back_on_the_network(
    isolating: WorkspaceHarness,
) -> None:
    ws = isolating
    ws.apply(workspace_manifest("peer"))
    ws.apply(workspace_manifest("sealed", {"network": {"egress": "None"}}))
    sealed = ws.wait_ready("sealed")
    ws.wait_ready("peer")
    wait_agent(sealed["status"]["endpoint"])
    agent = agent_of(ws, "sealed")
    env = agent.attrs["Config"]["Env"]
    assert not [e for e in env if e.lower().startswith(("http_proxy=", "https_proxy="))]
    peer_name = f"ws-{short_id(ws.uid('peer'))}"
    code, out = run_in(agent, f"timeout 3 wget -O- http://{peer_name}:8000/health 2>&1")
    assert code != 0, out
    assert "ok" not in out.split(), out
    code, out = run_in(agent, "nc -w 3 egress 3128 </dev/null && echo CONNECTED")
    assert "CONNECTED" not in out, out

    # Open again: the agent is recreated on the workspace network, the gateway and network go.
    ws.kubectl.run(
        "patch", "workspace", "sealed", "--type=json", "-p", '[{"op":"remove","path":"/spec/network"}]'
    )

    def back_on_the_network() -> bool:
        try:
            container = agent_of(ws, "sealed")
        except docker.errors.NotFound:
            return False
        return networks_of(container) == {DEFAULT_NETWORK}

    wait_until(back_on_the_network, timeout=60, what="the agent on the workspace network")
    opened = ws.wait_for("sealed", lambda o: bool((o.get("status") or {}).get("endpoint")), "an endpoint")
    wait_agent(opened["status"]["endpoint"])
    wait_until(
        lambda: not ws.docker.containers.list(all=True, filters={"name": gateway_name(agent.name)}),
        timeout=60,
        what="the gateway removed",
    )
    wait_until(
        lambda: not ws.docker.networks.list(names=[internal_network_name(agent.name)]),
        timeout=60,
        what="the internal network removed",
    )
    assert agent_get(opened["status"]["endpoint"], "/health").strip() == b"ok"


def test_deleting_an_isolated_workspace_removes_its_gateway_and_network(isolating: WorkspaceHarness) -> None:
    ws = isolating
    ws.apply(workspace_manifest("gone", {"network": {"egress": "None"}}))
    ws.wait_ready("gone")
    agent = agent_of(ws, "gone")
    assert ws.docker.networks.list(names=[internal_network_name(agent.name)])
    ws.kubectl.run("delete", "workspace", "gone", "--timeout=60s")
    assert not ws.docker.containers.list(all=True, filters={"name": agent.name})
    assert not ws.docker.networks.list(names=[internal_network_name(agent.name)])


def test_isolation_asked_of_the_wrong_shape_is_refused_at_apply(ws: WorkspaceHarness) -> None:
    for network, expected in (
        ({"egress": "None", "allow": ["api.example.com:443"]}, "network.allow lists destinations"),
        ({"egress": "AllowList"}, "network.allow lists destinations"),
        ({"egress": "AllowList", "allow": ["https://api.example.com"]}, "spec.network.allow[0]"),
        ({"egress": "Closed"}, "spec.network.egress"),
    ):
        with pytest.raises(KubectlError) as refused:
            ws.apply(workspace_manifest("shaped", {"network": network}))
        assert expected in str(refused.value), refused.value


def test_isolation_on_the_host_network_is_stalled_saying_why(isolating: WorkspaceHarness) -> None:
    ws = isolating
    ws.grant(tiers=[4], dockerSocket=False)
    ws.apply(workspace_manifest("hosted", {"tier": 4, "network": {"egress": "None"}}))
    stalled = ws.wait_stalled("hosted", "InvalidSpec")
    assert "tier 4 runs on the host's network" in stalled["message"]
    assert not ws.docker.containers.list(all=True, filters={"label": f"{UID_LABEL}={ws.uid('hosted')}"})


def test_a_namespace_whose_policy_requires_isolation_runs_only_isolated_agents_reaching_what_it_allows(
    isolating: WorkspaceHarness,
) -> None:
    ws = isolating
    ws.grant(requireNetworkIsolation=True, allowedEgress=["*.example.com:443"])
    ws.apply(workspace_manifest("loose"))
    ws.apply(workspace_manifest("wide", {"network": {"egress": "AllowList", "allow": ["evil.test:443"]}}))
    ws.apply(
        workspace_manifest("narrow", {"network": {"egress": "AllowList", "allow": ["api.example.com:443"]}})
    )
    assert ws.wait_stalled("loose", "PolicyDenied")["message"] == isolation_message(ws.namespace)
    assert "spec.network.allow names evil.test:443" in ws.wait_stalled("wide", "PolicyDenied")["message"]
    ws.wait_ready("narrow")
    for name in ("loose", "wide"):
        assert not ws.docker.containers.list(all=True, filters={"label": f"{UID_LABEL}={ws.uid(name)}"})
