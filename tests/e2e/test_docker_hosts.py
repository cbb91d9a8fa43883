"""Three real Docker daemons as DockerHosts: the machine's own and two of the test's (hack/stack/dockerd.sh).

Each host offers 1024 MiB and 8 CPUs (spec.capacity), so placement is decided by the tiers' requests
(tier 1: 256 MiB and 0.5 CPU; tier 2: 512 MiB and 1 CPU), whatever the machine has:

- unpinned Workspaces spread over the hosts by load; a pinned one and a selected one land where asked;
- one that fits nowhere is Stalled/Unschedulable, saying what is short, and one whose selector matches
  no host says so; both are placed once a third host is added;
- each host's orphan sweep removes its own orphans and leaves another instance's container alone;
- stopping one daemon turns only its Workspaces Ready=Unknown/HostUnavailable, re-places nothing and
  deletes nothing; once it is back they are Ready with the containers they had.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.support.polling import wait_until
from tests.support.relay import daemon_socket_path
from tests.support.stack import OwnDaemon, Registry, free_port
from tests.support.workspaces import (
    INSTANCE_LABEL,
    MANAGED_LABEL,
    UID_LABEL,
    WorkspaceHarness,
    condition,
    is_ready,
    secret_manifest,
    workspace_manifest,
)

pytestmark = pytest.mark.e2e

CAPACITY = {"cpus": 8, "memoryMiB": 1024}
TIMEOUT = 120.0


@pytest.fixture
def daemons(
    ws: WorkspaceHarness, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[tuple[OwnDaemon, docker.DockerClient]]]:
    """Two Docker daemons of the test's own, each on a bridge of its own."""
    started: list[tuple[OwnDaemon, docker.DockerClient]] = []
    try:
        for index, cidr in enumerate(("10.222.251.1/24", "10.222.252.1/24")):
            directory = Path(tmp_path_factory.mktemp(f"dh{index}", numbered=True))
            daemon = OwnDaemon(directory, bridge_cidr=cidr).start()
            started.append((daemon, docker.DockerClient(base_url=daemon.url, timeout=60)))
        yield started
    finally:
        for proc in ws.controllers:  # first: a running controller would put back what is removed next
            proc.stop()
        for daemon, client in started:
            client.close()
            daemon.remove()
            shutil.rmtree(daemon.directory, ignore_errors=True)


def ready_status(obj: dict[str, Any]) -> tuple[str | None, str | None]:
    ready = condition(obj, "Ready") or {}
    return ready.get("status"), ready.get("reason")


def owned_by(client: docker.DockerClient, instance: str) -> dict[str, str]:
    """{workspace uid: container id} of this instance's containers on one daemon."""
    selector = {"label": [f"{MANAGED_LABEL}=true", f"{INSTANCE_LABEL}={instance}"]}
    return {c.labels[UID_LABEL]: c.id for c in client.containers.list(all=True, filters=selector)}


def orphan(client: docker.DockerClient, image: str, instance: str) -> str:
    """A container carrying `instance`'s labels for a Workspace that does not exist."""
    labels = {
        MANAGED_LABEL: "true",
        INSTANCE_LABEL: instance,
        UID_LABEL: f"gone-{secrets.token_hex(8)}",
        "molecule.ai/workspace-namespace": "nowhere",
        "molecule.ai/workspace-name": "gone",
        "molecule.ai/deletion-policy": "Delete",
    }
    return str(client.containers.create(image, labels=labels, name=f"orphan-{secrets.token_hex(4)}").id)


def exists(client: docker.DockerClient, container_id: str) -> bool:
    try:
        client.containers.get(container_id)
    except docker.errors.NotFound:
        return False
    return True


def test_workspaces_are_placed_across_three_daemons_and_a_dead_one_costs_only_its_own(
    ws: WorkspaceHarness, registry: Registry, daemons: list[tuple[OwnDaemon, docker.DockerClient]]
) -> None:
    socket_path = daemon_socket_path()
    assert socket_path is not None
    (own_b, client_b), (own_c, client_c) = daemons
    host_a = ws.add_host("a", f"unix://{socket_path}", labels={"zone": "a"}, capacity=CAPACITY)
    host_b = ws.add_host("b", own_b.url, labels={"zone": "b"}, capacity=CAPACITY)
    ws.start_controller(WC_LOCAL_HOST="", WC_SWEEP_INTERVAL="1", WC_SWEEP_GRACE="0", WC_RESYNC_SECONDS="5")
    clients = {host_a: ws.docker, host_b: client_b}

    # Spread: four unpinned Workspaces go two and two; a pinned and a selected one where asked.
    spread = [f"spread-{i}" for i in range(4)]
    ws.apply("---\n".join(workspace_manifest(name, {"runtime": "langgraph", "tier": 1}) for name in spread))
    on = {name: ws.wait_ready(name)["status"]["host"] for name in spread}
    assert Counter(on.values()) == {host_a: 2, host_b: 2}
    ws.apply(workspace_manifest("pinned", {"runtime": "langgraph", "tier": 1, "placement": {"host": host_b}}))
    ws.apply(
        workspace_manifest(
            "selected",
            {
                "runtime": "langgraph",
                "tier": 1,
                "placement": {"hostSelector": {"matchLabels": {"zone": "a"}}},
            },
        )
    )
    on["pinned"] = ws.wait_ready("pinned")["status"]["host"]
    on["selected"] = ws.wait_ready("selected")["status"]["host"]
    assert (on["pinned"], on["selected"]) == (host_b, host_a)

    # Each host now has 256 MiB free: a tier 2 Workspace fits nowhere; a GPU one matches no host.
    ws.apply(workspace_manifest("roomy", {"runtime": "langgraph", "tier": 2}))
    ws.apply(
        workspace_manifest(
            "gpu",
            {
                "runtime": "langgraph",
                "tier": 1,
                "placement": {"hostSelector": {"matchLabels": {"gpu": "true"}}},
            },
        )
    )
    roomy = ws.wait_stalled("roomy", "Unschedulable")
    message = roomy["message"]
    assert "no DockerHost can take a tier 2 Workspace (512 MiB, 1 CPU)" in message
    assert f"{host_a} has only 256 MiB free" in message
    assert f"{host_b} has only 256 MiB free" in message
    gpu = ws.wait_stalled("gpu", "Unschedulable")
    assert "no DockerHost matches spec.placement.hostSelector" in gpu["message"]
    ws.wait_event("roomy", "Unschedulable")
    for host in (host_a, host_b):
        allocated = ws.get_host(host)["status"]["allocated"]
        assert (allocated["workspaces"], allocated["memoryMiB"]) == (3, 768)
        assert allocated["byTier"] == {"1": 3, "2": 0, "3": 0, "4": 0}

    # A third host with room and the label: both are placed there, without being touched.
    host_c = ws.add_host("c", own_c.url, labels={"zone": "c", "gpu": "true"}, capacity=CAPACITY)
    clients[host_c] = client_c
    on["roomy"] = ws.wait_ready("roomy", timeout=TIMEOUT)["status"]["host"]
    on["gpu"] = ws.wait_ready("gpu", timeout=TIMEOUT)["status"]["host"]
    assert (on["roomy"], on["gpu"]) == (host_c, host_c)
    listing = ws.kubectl.run("get", "dockerhosts", host_a, host_b, host_c)
    assert "READY" in listing.splitlines()[0], listing
    assert listing.count("True") == 3, listing

    # Every Workspace has one container, on its host and nowhere else.
    uids = {name: ws.uid(name) for name in on}
    containers = {host: owned_by(client, ws.instance) for host, client in clients.items()}
    for name, host in on.items():
        for other, there in containers.items():
            assert (uids[name] in there) == (other == host), f"{name} on {other}?"
    for host, client in clients.items():
        selector = {"label": [f"{INSTANCE_LABEL}={ws.instance}", f"molecule.ai/docker-host={host}"]}
        labelled = {c.labels[UID_LABEL] for c in client.containers.list(all=True, filters=selector)}
        assert labelled == set(containers[host]), f"the containers on {host} say where they are"
        dockerhost = ws.get_host(host)
        assert (condition(dockerhost, "Ready") or {}).get("status") == "True"
        assert dockerhost["status"]["info"]["serverVersion"]

    # The sweep on each host removes that host's orphan; another instance's container is left alone.
    image = registry.image("langgraph")
    orphans = {host: orphan(client, image, ws.instance) for host, client in clients.items()}
    foreign = orphan(ws.docker, image, f"other-{secrets.token_hex(3)}")
    try:
        for host, container_id in orphans.items():
            client = clients[host]
            wait_until(
                lambda c=client, i=container_id: not exists(c, i),  # type: ignore[misc]
                timeout=60,
                what=f"the orphan on {host} swept",
            )
        assert exists(ws.docker, foreign)
    finally:
        ws.docker.containers.get(foreign).remove(force=True)
    assert {host: owned_by(client, ws.instance) for host, client in clients.items()} == containers

    # One daemon stops: only its Workspaces are in doubt, nothing is re-placed or removed anywhere.
    own_b.stop()
    on_b = [name for name, host in on.items() if host == host_b]
    elsewhere = [name for name in on if name not in on_b]
    wait_until(
        lambda: all(ready_status(ws.get(name)) == ("Unknown", "HostUnavailable") for name in on_b),
        timeout=TIMEOUT,
        what=f"{', '.join(on_b)} Ready=Unknown/HostUnavailable",
    )
    wait_until(
        lambda: (condition(ws.get_host(host_b), "Ready") or {}).get("status") == "False",
        timeout=TIMEOUT,
        what=f"DockerHost {host_b} not Ready",
    )
    for name in elsewhere:
        assert is_ready(ws.get(name)), name
    for name in on:
        assert ws.get(name)["status"]["host"] == on[name], f"{name} was re-placed"
    for host in (host_a, host_c):
        assert owned_by(clients[host], ws.instance) == containers[host]

    own_b.start()
    for name in on_b:
        ws.wait_ready(name, timeout=TIMEOUT)
    assert {host: owned_by(client, ws.instance) for host, client in clients.items()} == containers


def test_two_shards_split_the_hosts_and_the_workspaces_between_them(ws: WorkspaceHarness) -> None:
    """Two controller Deployments as shards: each drives only the DockerHosts and reconciles only the
    Workspaces its selectors match, under an instance of its own. (Both hosts are the machine's daemon
    here; the instance labels keep the shards' containers apart.)"""
    socket_path = daemon_socket_path()
    assert socket_path is not None
    hosts = {
        shard: ws.add_host(
            f"shard-{shard}", f"unix://{socket_path}", labels={"shard": shard}, capacity=CAPACITY
        )
        for shard in ("east", "west")
    }
    instances = {shard: f"{shard}-{secrets.token_hex(3)}" for shard in hosts}
    for shard, instance in instances.items():
        ws.start_controller(
            WC_INSTANCE=instance,
            WC_LOCAL_HOST="",
            WC_HOST_SELECTOR=f"shard={shard}",
            WC_WORKSPACE_SELECTOR=f"shard={shard}",
        )
    names = {f"{shard}-{i}": shard for shard in hosts for i in range(2)}
    ws.apply(
        "---\n".join(
            workspace_manifest(name, {"runtime": "langgraph", "tier": 1}, labels={"shard": shard})
            for name, shard in names.items()
        )
    )
    # A Workspace no shard selects is left alone by both.
    ws.apply(workspace_manifest("nobody", {"runtime": "langgraph", "tier": 1}, labels={"shard": "north"}))
    for name, shard in names.items():
        obj = ws.wait_ready(name)
        assert obj["status"]["host"] == hosts[shard]
        assert owned_by(ws.docker, instances[shard]).get(obj["metadata"]["uid"]), f"{name} not {shard}'s"
        other = "west" if shard == "east" else "east"
        assert obj["metadata"]["uid"] not in owned_by(ws.docker, instances[other])
    nobody = ws.get("nobody")
    assert "status" not in nobody or not nobody["status"], nobody.get("status")
    assert not nobody["metadata"].get("finalizers")
    for shard, host in hosts.items():
        allocated = ws.get_host(host)["status"]["allocated"]
        assert allocated["workspaces"] == 2, (shard, allocated)


def make_certificates(directory: Path, ca_name: str) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    directory.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "1", "-subj", f"/CN={ca_name}")  # fmt: skip
    for who, extensions in (
        ("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ):
        (directory / f"{who}.ext").write_text(extensions)
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}.key", "-out", f"{who}.csr",
                "-subj", f"/CN={who}")  # fmt: skip
        openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{who}.crt", "-days", "1", "-extfile", f"{who}.ext")  # fmt: skip
    return {
        name: directory / name for name in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")
    }


def test_a_tcp_docker_host_is_reached_with_the_tls_files_of_its_secret_and_refused_without_them(
    ws: WorkspaceHarness, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A daemon listening on TCP with `--tlsverify`: the controller connects with the CA and client
    certificate of the DockerHost's Secret; with a Secret from another CA it is refused and says so."""
    certificates = make_certificates(Path(tmp_path_factory.mktemp("tls")), "workspace-e2e-ca")
    stranger = make_certificates(Path(tmp_path_factory.mktemp("tls-other")), "someone-else")
    port = free_port()
    daemon = OwnDaemon(
        Path(tmp_path_factory.mktemp("dt", numbered=True)),
        bridge_cidr="10.222.253.1/24",
        flags=(
            f"--host=tcp://127.0.0.1:{port}",
            "--tlsverify",
            f"--tlscacert={certificates['ca.crt']}",
            f"--tlscert={certificates['server.crt']}",
            f"--tlskey={certificates['server.key']}",
        ),
    ).start()
    try:
        for name, files in (("docker-tls", certificates), ("docker-tls-other", stranger)):
            ws.apply(
                secret_manifest(
                    name,
                    {
                        "ca.crt": files["ca.crt"].read_text(),
                        "tls.crt": files["client.crt"].read_text(),
                        "tls.key": files["client.key"].read_text(),
                    },
                )
            )
        endpoint = f"tcp://127.0.0.1:{port}"
        trusted = ws.add_host(
            "tls", endpoint, tls={"secretRef": {"name": "docker-tls", "namespace": ws.namespace}}
        )
        untrusted = ws.add_host(
            "tls-other", endpoint, tls={"secretRef": {"name": "docker-tls-other", "namespace": ws.namespace}}
        )
        ws.start_controller(WC_LOCAL_HOST="")
        ws.apply(
            workspace_manifest("secure", {"runtime": "langgraph", "tier": 1, "placement": {"host": trusted}})
        )
        ws.apply(
            workspace_manifest(
                "refused", {"runtime": "langgraph", "tier": 1, "placement": {"host": untrusted}}
            )
        )
        obj = ws.wait_ready("secure", timeout=TIMEOUT)
        assert obj["status"]["host"] == trusted
        client = docker.DockerClient(base_url=daemon.url, timeout=60)
        try:
            assert owned_by(client, ws.instance).get(obj["metadata"]["uid"])
        finally:
            client.close()
        wait_until(
            lambda: (condition(ws.get_host(untrusted), "Ready") or {}).get("reason") == "Unreachable",
            timeout=TIMEOUT,
            what=f"DockerHost {untrusted} Unreachable",
        )
        refused = condition(ws.get_host(untrusted), "Ready") or {}
        assert "SSL" in refused.get("message", "") or "certificate" in refused.get("message", ""), refused
        assert "BEGIN" not in refused.get("message", ""), "no key material in a status"
        wait_until(
            lambda: ready_status(ws.get("refused")) == ("Unknown", "HostUnavailable"),
            timeout=TIMEOUT,
            what="the Workspace on the refused host Ready=Unknown/HostUnavailable",
        )
        assert "BEGIN" not in ws.controller_logs()
    finally:
        for proc in ws.controllers:
            proc.stop()
        daemon.remove()
        shutil.rmtree(daemon.directory, ignore_errors=True)
