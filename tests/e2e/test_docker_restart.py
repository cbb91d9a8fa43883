"""The Docker daemon itself stopped and started (a real dockerd, not a relay cut) under a running
controller, while some Workspaces run and others are still being provisioned.

During the outage every Workspace says DockerUnavailable, the sweep removes nothing; afterwards every one
is Ready with exactly one container, the running ones keep theirs (same id, same volumes), and the event
stream is back: with the periodic resync out of the picture (an hour), a container stopped by hand is
started again, which only an event can have asked for.

The daemon is one of the test's own (hack/stack/dockerd.sh), so stopping it disturbs nothing else.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support.metrics import ControllerMetrics
from tests.support.polling import wait_until
from tests.support.stack import OwnDaemon
from tests.support.workspaces import (
    WorkspaceHarness,
    condition,
    container_of,
    containers_of,
    is_ready,
    volumes_of,
    workspace_manifest,
)

pytestmark = pytest.mark.e2e

RUNNING = ("steady-0", "steady-1", "steady-2")
ARRIVING = ("arriving-0", "arriving-1")
OUTAGE_TIMEOUT = 60.0
EVENTS = "workspace_controller_docker_events_total"


def host_interfaces() -> set[str]:
    """The host's network interfaces but containers' veths (they come and go with containers)."""
    listing = subprocess.run(["ip", "-brief", "link"], check=True, capture_output=True, text=True).stdout
    names = {line.split()[0].split("@")[0] for line in listing.splitlines() if line.strip()}
    return {name for name in names if not name.startswith("veth")}


@pytest.fixture
def own_daemon(
    ws: WorkspaceHarness, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OwnDaemon, docker.DockerClient]]:
    before = host_interfaces()
    daemon = OwnDaemon(Path(tmp_path_factory.mktemp("dd", numbered=True))).start()
    client = docker.DockerClient(base_url=daemon.url, timeout=60)
    yield daemon, client
    client.close()
    for proc in ws.controllers:  # first: a running controller would put back what is removed next
        proc.stop()
    daemon.remove()
    shutil.rmtree(daemon.directory, ignore_errors=True)
    # Restarting a daemon must not cost the machine's daemon its bridge (docker0), nor leave bridges.
    assert host_interfaces() == before


def docker_unavailable(obj: dict[str, object]) -> bool:
    synced = condition(obj, "Synced") or {}
    return synced.get("status") == "False" and synced.get("reason") == "DockerUnavailable"


def after_restart(ws: WorkspaceHarness, client: docker.DockerClient, names: tuple[str, ...]) -> str:
    """What a failure report needs: each Workspace's conditions and its containers as the daemon has them."""
    lines = []
    for name in names:
        obj = ws.get(name)
        status = obj.get("status") or {}
        conditions = [
            f"{c.get('type')}={c.get('status')}/{c.get('reason')}" for c in status.get("conditions") or []
        ]
        found = [
            f"{c.name} {c.status} {c.attrs['State'].get('Health', {}).get('Status', '-')}"
            for c in containers_of(client, obj["metadata"]["uid"])
        ]
        lines.append(
            f"{name}: {' '.join(conditions)}; container {status.get('container')}; on the daemon {found}"
        )
    return "\n".join(lines)


def test_a_docker_daemon_restart_destroys_nothing_duplicates_nothing_and_everything_is_ready_after(
    ws: WorkspaceHarness, own_daemon: tuple[OwnDaemon, docker.DockerClient]
) -> None:
    daemon, client = own_daemon
    proc = ws.start_controller(
        DOCKER_HOST=daemon.url, WC_RESYNC_SECONDS="3600", WC_SWEEP_INTERVAL="1", WC_SWEEP_GRACE="0"
    )
    metrics = ControllerMetrics.of(proc)
    for name in RUNNING:
        ws.apply(workspace_manifest(name))
    uids = {name: ws.wait_ready(name)["metadata"]["uid"] for name in RUNNING}
    ids = {name: container_of(client, uid).id for name, uid in uids.items()}
    volumes = {
        name: {v.name: v.attrs["CreatedAt"] for v in volumes_of(client, uid).values()}
        for name, uid in uids.items()
    }
    assert all(volumes.values())

    for name in ARRIVING:
        ws.apply(workspace_manifest(name))
    stopped_at = time.time()
    daemon.stop()
    down = time.time()

    everyone = RUNNING + ARRIVING
    wait_until(
        lambda: all(docker_unavailable(ws.get(name)) for name in everyone),
        timeout=OUTAGE_TIMEOUT,
        what="every Workspace Synced=False DockerUnavailable",
    )
    unavailable = time.time() - down
    skipped = metrics.sweep_passes("skipped")
    wait_until(lambda: metrics.sweep_passes("skipped") >= skipped + 2, timeout=30, what="sweeps skipped")
    for name in everyone:
        obj = ws.get(name)
        assert "deletionTimestamp" not in obj["metadata"]
        assert (condition(obj, "Ready") or {}).get("status") == "Unknown", f"{name}: nobody can tell"
    uids.update({name: ws.uid(name) for name in ARRIVING})

    daemon.start()
    back = time.time()
    try:
        for name in everyone:
            ws.wait_ready(name)
    except Exception as exc:
        raise AssertionError(
            f"not all Ready after the daemon came back:\n{after_restart(ws, client, everyone)}"
        ) from exc
    recovered = time.time() - back

    for name, uid in uids.items():
        found = containers_of(client, uid)
        assert len(found) == 1, f"{name}: {[c.name for c in found]}"
        assert found[0].status == "running", name
    for name in RUNNING:
        assert container_of(client, uids[name]).id == ids[name], f"{name} kept its container"
        now = {v.name: v.attrs["CreatedAt"] for v in volumes_of(client, uids[name]).values()}
        assert now == volumes[name], f"{name} kept its volumes"
    assert metrics.sweep_removed("container") == 0
    assert metrics.sweep_removed("volume") == 0
    assert metrics.value(EVENTS, action="disconnected") >= 1
    assert metrics.value(EVENTS, action="reconnected") >= 1

    # The event stream is back: nothing else would notice this before the hour's resync.
    victim = container_of(client, uids["steady-0"])
    victim.stop(timeout=2)
    wait_until(
        lambda: container_of(client, uids["steady-0"]).status == "running",
        timeout=30,
        what="the stopped container started again",
    )
    assert container_of(client, uids["steady-0"]).id == ids["steady-0"]
    wait_until(lambda: is_ready(ws.get("steady-0")), timeout=30, what="steady-0 Ready again")
    assert proc.running
    print(
        f"\ndockerd stopped {down - stopped_at:.1f}s; all {len(everyone)} DockerUnavailable after "
        f"{unavailable:.1f}s; all Ready {recovered:.1f}s after it was back; "
        f"containers {len(uids)} (one each), volumes kept {sum(len(v) for v in volumes.values())}, "
        f"swept 0"
    )
