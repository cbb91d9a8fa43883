"""The orphan sweep against the real stack: what it removes, and everything it must leave alone.

An orphan is a container (and, with deletionPolicy Delete, its volumes) labelled for this controller
instance whose Workspace no longer exists, e.g. one deleted while the controller was down and its
finalizer removed by hand. Passes are counted on the controller's metrics endpoint, so "survives many
passes" waits on the sweep's own evidence, never on the clock.
"""

from __future__ import annotations

import contextlib
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker
import docker.errors
import pytest
import yaml
from docker.models.containers import Container
from docker.models.volumes import Volume

from controller.docker.parse import parse_timestamp
from tests.support.metrics import ControllerMetrics
from tests.support.polling import wait_until
from tests.support.relay import TcpRelay
from tests.support.stack import ControlPlane, Registry
from tests.support.workspaces import (
    DELETION_POLICY_LABEL,
    INSTANCE_LABEL,
    MANAGED_LABEL,
    NAME_LABEL,
    NAMESPACE_LABEL,
    UID_LABEL,
    WorkspaceHarness,
    container_of,
    containers_of,
    volumes_of,
    workspace_manifest,
)

pytestmark = pytest.mark.e2e

FAST_SWEEP = {"WC_SWEEP_INTERVAL": "1", "WC_SWEEP_GRACE": "0"}


@dataclass
class Handmade:
    """Docker objects a test makes directly (as another platform, a person or a crash would leave them)."""

    client: docker.DockerClient
    image: str
    containers: list[Container] = field(default_factory=list)
    volumes: list[Volume] = field(default_factory=list)

    def container(self, labels: dict[str, str], name: str | None = None) -> Container:
        made: Container = self.client.containers.run(
            self.image,
            name=name or f"ws-{secrets.token_hex(6)}",
            labels=labels,
            detach=True,
            restart_policy={"Name": "unless-stopped"},
        )
        self.containers.append(made)
        return made

    def volume(self, name: str, labels: dict[str, str]) -> Volume:
        made: Volume = self.client.volumes.create(name=name, labels=labels)
        self.volumes.append(made)
        return made

    def orphan(self, instance: str, *, policy: str = "Delete") -> tuple[Container, Volume]:
        """A container and its configs volume, labelled for `instance`, of a Workspace that never existed."""
        uid = str(uuid.uuid4())
        labels = owned_labels(instance, uid)
        container = self.container({**labels, DELETION_POLICY_LABEL: policy}, name=f"ws-{uid[:12]}")
        volume = self.volume(f"ws-{uid[:12]}-configs", {**labels, DELETION_POLICY_LABEL: policy})
        return container, volume

    def remove_all(self) -> None:
        for container in self.containers:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        for volume in self.volumes:
            with contextlib.suppress(docker.errors.NotFound):
                volume.remove(force=True)


def owned_labels(instance: str, uid: str, namespace: str = "gone", name: str = "gone") -> dict[str, str]:
    return {
        MANAGED_LABEL: "true",
        INSTANCE_LABEL: instance,
        UID_LABEL: uid,
        NAMESPACE_LABEL: namespace,
        NAME_LABEL: name,
    }


def exists(client: docker.DockerClient, obj: Container | Volume) -> bool:
    try:
        if isinstance(obj, Container):
            client.containers.get(obj.id)
        else:
            client.volumes.get(obj.name)
    except docker.errors.NotFound:
        return False
    return True


def created_at(container: Container) -> float:
    moment = parse_timestamp(container.attrs["Created"])
    assert moment is not None
    return moment.timestamp()


@pytest.fixture
def handmade(docker_client: docker.DockerClient, registry: Registry) -> Iterator[Handmade]:
    made = Handmade(docker_client, registry.image("langgraph"))
    yield made
    made.remove_all()


def wait_passes(metrics: ControllerMetrics, outcome: str, more: int, timeout: float = 30) -> None:
    """Wait for `more` sweep passes with `outcome` beyond those counted now."""
    start = metrics.sweep_passes(outcome)
    wait_until(
        lambda: metrics.sweep_passes(outcome) >= start + more,
        timeout=timeout,
        what=f"{more} more sweep passes ({outcome})",
    )


# --- what goes ---------------------------------------------------------------------------------------------


def test_a_workspace_deleted_behind_the_controllers_back_is_swept_and_its_volumes_follow_its_policy(
    ws: WorkspaceHarness,
) -> None:
    """Controller down, finalizer stripped, Workspace deleted: on the next start the sweep cleans up.

    deletionPolicy Delete: container and volumes go. Retain: the container goes, the volumes stay.
    """
    settings = {"WC_SWEEP_INTERVAL": "1", "WC_SWEEP_GRACE": "1"}
    first = ws.start_controller(**settings)
    ws.apply(workspace_manifest("doomed", {"deletionPolicy": "Delete"}))
    ws.apply(workspace_manifest("kept", {"deletionPolicy": "Retain"}))
    doomed, kept = ws.wait_ready("doomed")["metadata"]["uid"], ws.wait_ready("kept")["metadata"]["uid"]
    doomed_volumes, kept_volumes = volumes_of(ws.docker, doomed), volumes_of(ws.docker, kept)
    assert doomed_volumes
    assert kept_volumes
    container_of(ws.docker, doomed)
    container_of(ws.docker, kept)

    first.stop()
    for name in ("doomed", "kept"):
        ws.kubectl.run("patch", "workspace", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
        ws.kubectl.run("delete", "workspace", name, "--timeout=30s")
    # Nothing cleaned up while the controller was down: there was nobody to run the finalizer.
    assert containers_of(ws.docker, doomed)
    assert containers_of(ws.docker, kept)

    metrics = ControllerMetrics.of(ws.start_controller(**settings))
    wait_until(
        lambda: not containers_of(ws.docker, doomed) and not containers_of(ws.docker, kept),
        timeout=30,
        what="both orphaned containers removed",
    )
    wait_until(lambda: not volumes_of(ws.docker, doomed), timeout=10, what="Delete-policy volumes removed")
    wait_passes(metrics, "completed", 2)  # and the Retain volumes survive later passes too

    assert set(volumes_of(ws.docker, kept)) == set(kept_volumes)
    assert metrics.sweep_removed("container") == 2
    assert metrics.sweep_removed("volume") == len(doomed_volumes)
    assert metrics.sweep_skipped("retained") >= len(kept_volumes)
    assert metrics.sweep_skipped("no-container") >= len(kept_volumes)


# --- what stays --------------------------------------------------------------------------------------------


def test_only_this_instances_labelled_orphans_go_everything_else_survives_many_passes(
    ws: WorkspaceHarness, handmade: Handmade
) -> None:
    proc = ws.start_controller(**FAST_SWEEP)
    metrics = ControllerMetrics.of(proc)
    instance = ws.instance
    ws.apply(workspace_manifest("alive"))
    alive = container_of(ws.docker, ws.wait_ready("alive")["metadata"]["uid"])

    other_uid = str(uuid.uuid4())
    survivors: dict[str, Container | Volume] = {
        "unlabelled ws- container": handmade.container({}),
        "managed label only": handmade.container({MANAGED_LABEL: "true"}),
        "another controller instance's orphan": handmade.container(
            {**owned_labels(f"{instance}-other", other_uid), DELETION_POLICY_LABEL: "Delete"},
            name=f"ws-{other_uid[:12]}",
        ),
        "this instance, no workspace uid label": handmade.container(
            {MANAGED_LABEL: "true", INSTANCE_LABEL: instance}
        ),
        "this instance's volume with no container": handmade.volume(
            f"ws-{secrets.token_hex(6)}-configs", {**owned_labels(instance, str(uuid.uuid4()))}
        ),
        "unlabelled ws- volume": handmade.volume(f"ws-{secrets.token_hex(6)}-workspace", {}),
        "a live Workspace's container": alive,
    }
    orphan, orphan_volume = handmade.orphan(instance)  # the control: this one must go

    wait_until(
        lambda: not exists(ws.docker, orphan) and not exists(ws.docker, orphan_volume),
        timeout=30,
        what="this instance's orphan removed",
    )
    wait_passes(metrics, "completed", 3)

    gone = [what for what, obj in survivors.items() if not exists(ws.docker, obj)]
    assert gone == []
    assert metrics.sweep_removed("container") == 1
    assert metrics.sweep_removed("volume") == 1
    assert metrics.sweep_skipped("no-owner-label") >= 3
    assert metrics.sweep_skipped("no-container") >= 3
    assert ws.get("alive")["status"]["container"]["id"] == alive.id


def test_a_fresh_orphan_survives_until_the_creation_grace_ends(
    ws: WorkspaceHarness, handmade: Handmade
) -> None:
    """Docker may create a container while the create call reports an error: a young orphan is left alone."""
    grace = 8.0
    proc = ws.start_controller(WC_SWEEP_INTERVAL="1", WC_SWEEP_GRACE=str(int(grace)))
    metrics = ControllerMetrics.of(proc)
    wait_passes(metrics, "completed", 1)

    orphan, _ = handmade.orphan(ws.instance)
    born = created_at(orphan)
    wait_until(lambda: metrics.sweep_skipped("within-grace") >= 1, timeout=10, what="a pass inside the grace")
    inside = time.time()
    assert exists(ws.docker, orphan)
    assert inside < born + grace - 1  # the check above really was inside the grace

    wait_until(
        lambda: not exists(ws.docker, orphan), timeout=grace + 10, what="the orphan removed after the grace"
    )
    gone = time.time()
    # Docker lists creation times in whole seconds, so the sweep may see the orphan up to 1 s older.
    assert gone >= born + grace - 1, f"removed {gone - born:.1f}s after creation, grace {grace}s"
    assert metrics.sweep_removed("container") == 1


def test_dry_run_removes_nothing_and_reports_what_it_would_remove(
    ws: WorkspaceHarness, handmade: Handmade
) -> None:
    proc = ws.start_controller(WC_SWEEP_DRY_RUN="true", **FAST_SWEEP)
    metrics = ControllerMetrics.of(proc)
    orphan, volume = handmade.orphan(ws.instance)

    wait_passes(metrics, "dry_run", 3)

    assert exists(ws.docker, orphan)
    assert exists(ws.docker, volume)
    assert metrics.sweep_passes("completed") == 0
    assert metrics.sweep_removed("container") == 0
    assert metrics.sweep_removed("volume") == 0
    assert metrics.value("workspace_controller_sweep_orphans", kind="container") == 1
    assert metrics.value("workspace_controller_sweep_orphans", kind="volume") == 1
    logs = proc.logs()
    assert f"would remove containers ['{orphan.name}'] and volumes ['{volume.name}']" in logs


# --- a pass that cannot see the whole picture ------------------------------------------------------------


def _relayed_kubeconfig(source: Path, relay: TcpRelay, target: Path) -> Path:
    """`source` with the relay's port as the server's (same host: the TLS certificate still fits)."""
    config: dict[str, Any] = yaml.safe_load(source.read_text())
    for cluster in config["clusters"]:
        server = urlsplit(cluster["cluster"]["server"])
        cluster["cluster"]["server"] = f"{server.scheme}://{server.hostname}:{relay.port}"
    target.write_text(yaml.safe_dump(config))
    return target


@pytest.fixture
def apiserver_relay(control_plane: ControlPlane) -> Iterator[TcpRelay]:
    config: dict[str, Any] = yaml.safe_load(control_plane.controller_kubeconfig.read_text())
    server = urlsplit(config["clusters"][0]["cluster"]["server"])
    assert server.hostname
    assert server.port
    relay = TcpRelay(server.hostname, server.port)
    yield relay
    relay.close()


def test_a_pass_during_an_api_outage_removes_nothing(
    ws: WorkspaceHarness,
    handmade: Handmade,
    control_plane: ControlPlane,
    apiserver_relay: TcpRelay,
    tmp_path: Path,
) -> None:
    """The controller reaches the kube-apiserver through a relay; cutting it is an outage for it alone.

    While the Workspace list cannot be read, a pass cannot tell a live Workspace's container from an
    orphan, so it must remove neither: not the orphan, and above all not the live one.
    """
    kubeconfig = _relayed_kubeconfig(
        control_plane.controller_kubeconfig, apiserver_relay, tmp_path / "kubeconfig"
    )
    proc = ws.start_controller(KUBECONFIG=str(kubeconfig), **FAST_SWEEP)
    metrics = ControllerMetrics.of(proc)
    ws.apply(workspace_manifest("alive"))
    alive = container_of(ws.docker, ws.wait_ready("alive")["metadata"]["uid"])
    wait_passes(metrics, "completed", 1)

    apiserver_relay.go_away()
    orphan, volume = handmade.orphan(ws.instance)
    wait_passes(metrics, "skipped", 3)

    assert exists(ws.docker, alive)
    assert exists(ws.docker, orphan)
    assert exists(ws.docker, volume)
    assert metrics.sweep_removed("container") == 0
    assert "the Workspace list could not be read completely" in proc.logs()

    apiserver_relay.come_back()
    wait_until(
        lambda: not exists(ws.docker, orphan), timeout=30, what="the orphan removed once the API is back"
    )
    wait_passes(metrics, "completed", 2)
    assert exists(ws.docker, alive)
    assert not exists(ws.docker, volume)
    assert metrics.sweep_removed("container") == 1
    ws.wait_ready("alive")
