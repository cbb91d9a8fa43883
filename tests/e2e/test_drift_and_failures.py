"""Faults and drift on the Docker side: what the status says, how soon, and what the controller does.

Every fault is real: `docker kill`, `docker rm -f` and `docker stop` of the controller's container, a kernel
OOM kill under the tier's memory limit, an agent that exits at once under Docker's restart policy, a
container swapped by hand, and a daemon that stops answering (a relay in front of the real socket, cut).
Status is read through a watch, so a status that lasts a fraction of a second is still seen, with the
time it arrived.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import docker
import pytest

from tests.support.controller_process import ControllerProcess
from tests.support.metrics import ControllerMetrics, docker_calls
from tests.support.polling import wait_until
from tests.support.relay import DaemonRelay
from tests.support.stack import Registry
from tests.support.watch import Seen, watching
from tests.support.workspaces import (
    CONFIG_HASH_LABEL,
    WorkspaceHarness,
    container_of,
    containers_of,
    is_ready,
    volumes_of,
    workspace_manifest,
)

pytestmark = pytest.mark.e2e

DETECTION_LIMIT = 2.0
"""A fault must show in the Workspace's status within this many seconds."""
DOCKER_WRITES = ("create_container", "start_container", "stop_container", "remove_container", "put_files")


def _ready(seen: Seen) -> bool:
    ready = seen.condition("Ready")
    return (
        ready.get("status") == "True"
        and ready.get("observedGeneration") == seen.obj["metadata"]["generation"]
    )


def _healthy(seen: Seen) -> bool:
    return _ready(seen) and seen.container.get("health") == "healthy"


def _docker_time(client: docker.DockerClient, container_id: str, action: str, since: float) -> float:
    """When the daemon recorded the first `action` event of the container since `since` (epoch seconds)."""
    events = client.events(
        since=int(since),
        until=int(time.time()) + 1,
        filters={"container": container_id, "event": action},
        decode=True,
    )
    times = [float(event["timeNano"]) / 1e9 for event in events]
    assert times, f"no {action} event for {container_id[:12]}"
    return min(times)


def _report(what: str, seconds: float) -> None:
    print(f"\n{what}: {seconds:.3f}s")


# --- faults, and how soon the status shows them --------------------------------------------------------


def test_docker_kill_shows_in_status_within_2s_and_the_same_container_runs_again(
    ws: WorkspaceHarness,
) -> None:
    ws.start_controller()
    ws.apply(workspace_manifest("killed"))
    container = container_of(ws.docker, ws.wait_ready("killed")["metadata"]["uid"])
    started_at = container.attrs["State"]["StartedAt"]

    with watching(ws.kubectl, "killed") as watch:
        watch.wait_for(_ready, what="Ready before the kill")
        killed_at = time.time()
        container.kill()
        reported = watch.wait_for(
            lambda s: s.container.get("exitCode") == 137, after=killed_at, what="exit 137"
        )
        back = watch.wait_for(_ready, after=reported.at, what="Ready again")

    _report("docker kill -> status", reported.at - killed_at)
    assert reported.at - killed_at < DETECTION_LIMIT
    assert reported.condition("Ready")["status"] != "True", reported.status
    container.reload()
    # Docker does not restart a killed container: the controller started the same one again.
    assert back.container["id"] == container.id
    assert container.attrs["State"]["Running"]
    assert container.attrs["State"]["StartedAt"] != started_at


def test_docker_rm_shows_in_status_within_2s_and_the_container_is_recreated_with_its_volumes(
    ws: WorkspaceHarness,
) -> None:
    ws.start_controller()
    ws.apply(workspace_manifest("removed"))
    uid = ws.wait_ready("removed")["metadata"]["uid"]
    original = container_of(ws.docker, uid)
    volumes = set(volumes_of(ws.docker, uid))
    assert volumes

    with watching(ws.kubectl, "removed") as watch:
        watch.wait_for(_ready, what="Ready before the removal")
        removed_at = time.time()
        original.remove(force=True)
        reported = watch.wait_for(
            lambda s: s.container.get("id") != original.id,
            after=removed_at,
            what="another container reported",
        )
        back = watch.wait_for(_ready, after=reported.at, what="Ready again")

    _report("docker rm -f -> status", reported.at - removed_at)
    assert reported.at - removed_at < DETECTION_LIMIT
    assert reported.condition("Ready")["status"] != "True", reported.status
    replacement = container_of(ws.docker, uid)
    assert replacement.id == back.container["id"] != original.id
    assert replacement.name == original.name
    assert set(volumes_of(ws.docker, uid)) == volumes  # the data outlives the container


def test_an_oom_kill_shows_in_status_within_2s_then_crash_loop_and_a_spec_fix_makes_it_ready(
    ws: WorkspaceHarness,
) -> None:
    """The agent holds 96 MiB under tier 2's memory limit, lowered to 32 MiB: the kernel OOM-kills it.

    Docker's restart policy restarts it at once (and reports exit code 0 while it runs), so only a
    status written within moments of the kill can say what happened.
    """
    ws.start_controller(TIER2_MEMORY_MB="32", WC_CRASHLOOP_RESTARTS="3", WC_CRASHLOOP_WINDOW="120")
    began = time.time()
    ws.apply(workspace_manifest("hungry", {"tier": 2, "env": [{"name": "AGENT_ALLOC_MB", "value": "96"}]}))
    with watching(ws.kubectl, "hungry") as watch:
        reported = watch.wait_for(
            lambda s: s.container.get("oomKilled") is True, what="oomKilled", timeout=60
        )
        uid = str(reported.obj["metadata"]["uid"])
        container = container_of(ws.docker, uid)
        assert container.attrs["HostConfig"]["Memory"] == 32 * 1024 * 1024
        oom_at = _docker_time(ws.docker, container.id, "oom", began)
        assert reported.container.get("exitCode") == 137
        assert reported.condition("Ready")["status"] == "False"
        stalled = watch.wait_for(
            lambda s: s.condition("Stalled").get("reason") == "CrashLoop", after=reported.at, what="CrashLoop"
        )
    _report("OOM kill -> status", reported.at - oom_at)
    assert reported.at - oom_at < DETECTION_LIMIT
    message = stalled.condition("Stalled")["message"]
    assert "last exit code 137" in message
    assert "memory limit" in message

    ws.patch_spec("hungry", {"env": []})
    ready = ws.wait_ready("hungry")
    assert ready["status"]["container"]["id"] != container.id
    assert not any(c["type"] == "Stalled" for c in ready["status"]["conditions"])


def test_a_crash_looping_agent_is_stalled_without_being_recreated_and_clears_when_the_spec_changes(
    ws: WorkspaceHarness,
) -> None:
    """Docker restarts the agent (restart policy unless-stopped); the controller counts, it does not fight.

    The window is 3 s: Docker's restart delay (0.1 s, doubling) outgrows it after five restarts, and the
    loop must still be reported, since the agent never stayed up in between.
    """
    proc = ws.start_controller(WC_CRASHLOOP_RESTARTS="3", WC_CRASHLOOP_WINDOW="3")
    metrics = ControllerMetrics.of(proc)
    ws.apply(workspace_manifest("crashing", {"env": [{"name": "AGENT_EXIT", "value": "3"}]}))
    with watching(ws.kubectl, "crashing") as watch:
        stalled = watch.wait_for(
            lambda s: s.condition("Stalled").get("reason") == "CrashLoop",
            what="Stalled CrashLoop",
            timeout=60,
        )
        uid = str(stalled.obj["metadata"]["uid"])
        container = container_of(ws.docker, uid)
        # The 7th restart comes 6.4 s after the 6th: more than the window, and still the same loop.
        watch.wait_for(
            lambda s: s.container.get("restartCount", 0) >= 7,
            after=stalled.at,
            timeout=60,
            what="Docker's 7th restart in status",
        )
        history = watch.seen

    condition = stalled.condition("Stalled")
    assert condition["status"] == "True"
    assert "last exit code 3" in condition["message"]
    assert stalled.condition("Ready")["status"] == "False"
    since = [s for s in history if s.at >= stalled.at]
    assert [s.condition("Stalled").get("reason") for s in since] == ["CrashLoop"] * len(since)
    assert {s.container.get("id") for s in history if s.container} == {container.id}
    assert containers_of(ws.docker, uid) == [container]
    assert metrics.docker_calls("create_container") == 1
    assert metrics.docker_calls("start_container") == 1  # Docker's restarts are not fought

    ws.patch_spec("crashing", {"env": [{"name": "AGENT_MOOD", "value": "fine"}]})
    ready = ws.wait_ready("crashing")
    assert ready["status"]["container"]["id"] != container.id
    assert not any(c["type"] == "Stalled" for c in ready["status"]["conditions"])


# --- drift -------------------------------------------------------------------------------------------------


def test_a_container_stopped_by_hand_is_started_again(ws: WorkspaceHarness) -> None:
    ws.start_controller()
    ws.apply(workspace_manifest("stopped"))
    container = container_of(ws.docker, ws.wait_ready("stopped")["metadata"]["uid"])
    started_at = container.attrs["State"]["StartedAt"]

    with watching(ws.kubectl, "stopped") as watch:
        watch.wait_for(_ready, what="Ready before the stop")
        stopped_at = time.time()
        container.stop(timeout=1)
        reported = watch.wait_for(lambda s: not _ready(s), after=stopped_at, what="not Ready")
        back = watch.wait_for(_ready, after=reported.at, what="Ready again")

    assert back.container["id"] == container.id
    container.reload()
    assert container.attrs["State"]["Running"]
    assert container.attrs["State"]["StartedAt"] != started_at


@contextmanager
def _paused(proc: ControllerProcess) -> Iterator[None]:
    """Freeze the controller (SIGSTOP) so a change by hand lands between two of its observations."""
    assert proc.proc is not None
    os.killpg(proc.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(proc.proc.pid, signal.SIGCONT)


@pytest.mark.parametrize(
    "keep_hash_label", [False, True], ids=["without-config-hash", "with-copied-config-hash"]
)
def test_a_container_recreated_by_hand_with_another_image_is_replaced_within_one_resync(
    ws: WorkspaceHarness, registry: Registry, keep_hash_label: bool
) -> None:
    """Someone replaced the workspace's container by hand: same name and ownership labels, another image.

    Without the config-hash label it cannot be what the spec asks for; with the label copied over it
    claims to be, but its image says otherwise. Either way it goes, and the controller's own comes back.
    """
    resync = 2
    proc = ws.start_controller(WC_RESYNC_SECONDS=str(resync))
    ws.apply(workspace_manifest("swapped"))
    uid = ws.wait_ready("swapped")["metadata"]["uid"]
    original = container_of(ws.docker, uid)
    labels: dict[str, str] = dict(original.labels)
    if not keep_hash_label:
        del labels[CONFIG_HASH_LABEL]
    impostor_image = registry.image("hermes")

    with _paused(proc):
        original.remove(force=True)
        impostor = ws.docker.containers.run(
            impostor_image,
            name=original.name,
            labels=labels,
            detach=True,
            restart_policy={"Name": "unless-stopped"},
        )
        swapped_at = time.time()

    def replaced() -> Any:
        found = containers_of(ws.docker, uid)
        return (
            len(found) == 1
            and found[0].id != impostor.id
            and found[0].labels.get(CONFIG_HASH_LABEL) == (original.labels[CONFIG_HASH_LABEL])
        )

    wait_until(replaced, timeout=resync + 3, interval=0.1, what="the hand-made container replaced")
    _report("hand-made container -> replaced", time.time() - swapped_at)
    current = container_of(ws.docker, uid)
    assert current.attrs["Config"]["Image"] == original.attrs["Config"]["Image"] != impostor_image
    ws.wait_for(
        "swapped",
        lambda obj: is_ready(obj) and obj["status"]["container"]["id"] == current.id,
        "Ready with the controller's own container",
    )


def test_a_healthy_workspace_costs_no_writes_on_resync(ws: WorkspaceHarness) -> None:
    """Several resyncs of a healthy Workspace: one list each and nothing else (no pass, no Docker write,
    no inspect, no status write). A status someone else writes is written right again at once."""
    proc = ws.start_controller(WC_RESYNC_SECONDS="1")
    metrics = ControllerMetrics.of(proc)
    ws.apply(workspace_manifest("steady"))
    with watching(ws.kubectl, "steady") as watch:
        settled = watch.wait_for(_healthy, what="Ready and healthy", timeout=90)
        container = container_of(ws.docker, str(settled.obj["metadata"]["uid"]))
        started_at = container.attrs["State"]["StartedAt"]

        def passes() -> float:
            return sum(
                metrics.value("controller_runtime_reconcile_total", controller="workspace", result=result)
                for result in ("success", "error", "requeue_after")
            )

        # The pass that saw it healthy may still be ending: settled once the resyncs bring no pass.
        def lists() -> float:
            return docker_calls(metrics.scrape(), "list_containers")

        def quiet_resyncs() -> bool:
            first, listed = passes(), lists()
            wait_until(lambda: lists() >= listed + 2, timeout=15, what="two more resyncs")
            return passes() == first

        wait_until(quiet_resyncs, timeout=60, interval=0, what="resyncs that bring no pass")
        before, first = metrics.scrape(), passes()
        wait_until(lambda: lists() >= docker_calls(before, "list_containers") + 3, timeout=15, what="resyncs")
        after = metrics.scrape()
        latest = watch.latest

        assert passes() == first  # a fleet at rest costs its resyncs the list alone
        assert latest.resource_version == settled.resource_version  # no Kubernetes write
        assert ws.get("steady")["metadata"]["resourceVersion"] == settled.resource_version
        for operation in DOCKER_WRITES:
            assert docker_calls(after, operation) == docker_calls(before, operation), operation
        assert docker_calls(after, "inspect_container") == docker_calls(before, "inspect_container")
        container.reload()
        assert container.id == settled.container["id"]
        assert container.attrs["State"]["StartedAt"] == started_at

        patched_at = time.time()
        ws.kubectl.run(
            "patch", "workspace", "steady", "--subresource=status", "--type=merge",
            "-p", '{"status": {"phase": "Pending"}}',
        )  # fmt: skip
        wrong = watch.wait_for(lambda seen: seen.status.get("phase") == "Pending", after=patched_at)
        right = watch.wait_for(lambda seen: seen.status.get("phase") == "Running", after=wrong.at, timeout=10)
        assert int(right.obj["metadata"]["resourceVersion"]) > int(wrong.obj["metadata"]["resourceVersion"])
    container.reload()
    assert container.id == settled.container["id"]


def test_docker_unavailable_destroys_nothing_and_the_workspace_recovers(
    ws: WorkspaceHarness, daemon_relay: DaemonRelay
) -> None:
    """The daemon stops answering (the relay in front of it is cut), then comes back."""
    proc = ws.start_controller(
        DOCKER_HOST=daemon_relay.url, WC_RESYNC_SECONDS="1", WC_SWEEP_INTERVAL="1", WC_SWEEP_GRACE="0"
    )
    metrics = ControllerMetrics.of(proc)
    ws.apply(workspace_manifest("unplugged"))
    uid = ws.wait_ready("unplugged")["metadata"]["uid"]
    container = container_of(ws.docker, uid)
    started_at = container.attrs["State"]["StartedAt"]

    with watching(ws.kubectl, "unplugged") as watch:
        cut_at = time.time()
        daemon_relay.go_away()
        unavailable = watch.wait_for(
            lambda s: (
                s.condition("Synced").get("reason") == "DockerUnavailable"
                and s.condition("Synced").get("status") == "False"
            ),
            after=cut_at,
            what="Synced=False DockerUnavailable",
        )
        skipped = metrics.sweep_passes("skipped")
        wait_until(lambda: metrics.sweep_passes("skipped") >= skipped + 2, timeout=15, what="sweeps skipped")
        container.reload()
        assert container.attrs["State"]["Running"]

        daemon_relay.come_back()
        restored_at = time.time()
        synced = watch.wait_for(
            lambda s: s.condition("Synced").get("status") == "True" and _ready(s),
            after=restored_at,
            what="Synced=True again",
        )
        completed = metrics.sweep_passes("completed")
        wait_until(lambda: metrics.sweep_passes("completed") >= completed + 2, timeout=15, what="sweeps done")

    _report("Docker cut -> Synced=False", unavailable.at - cut_at)
    _report("Docker back -> Synced=True", synced.at - restored_at)
    container.reload()
    assert containers_of(ws.docker, uid) == [container]
    assert container.attrs["State"]["Running"]
    assert container.attrs["State"]["StartedAt"] == started_at  # not even restarted
    assert synced.container["id"] == container.id
    assert metrics.sweep_removed("container") == 0


def test_a_container_renamed_by_hand_is_replaced_and_never_left_running_beside_the_new_one(
    ws: WorkspaceHarness,
) -> None:
    """A rename makes the workspace's name free: the controller creates the container again and removes
    the renamed one (same volumes, same network alias: two agents must never run), and deletion then
    completes."""
    ws.start_controller()
    ws.apply(workspace_manifest("renamed"))
    uid = ws.wait_ready("renamed")["metadata"]["uid"]
    original = container_of(ws.docker, uid)
    name = original.name
    original.rename(f"{name}-old")

    def replaced() -> bool:
        found = containers_of(ws.docker, uid)
        return len(found) == 1 and found[0].name == name and found[0].id != original.id

    wait_until(replaced, timeout=30, what="exactly one container, under the workspace's own name")
    ws.wait_ready("renamed")

    ws.kubectl.run("delete", "workspace", "renamed", "--timeout=60s")
    assert containers_of(ws.docker, uid) == []
    assert volumes_of(ws.docker, uid) == {}
