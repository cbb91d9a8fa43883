"""The container a Workspace becomes: environment, labels, port, network, mounts and tier HostConfig.

Every test applies Workspaces to the real kube-apiserver, lets its own controller process reconcile
them into the real Docker Engine, and checks the result twice where it can: as Docker recorded it
(`docker inspect`) and as the test agent inside the container sees it (over its published port).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from docker.models.containers import Container

from tests.support.workspaces import (
    CONFIG_HASH_LABEL,
    DELETION_POLICY_LABEL,
    INSTANCE_LABEL,
    MANAGED_LABEL,
    NAME_LABEL,
    NAMESPACE_LABEL,
    NETWORK,
    UID_LABEL,
    WorkspaceHarness,
    agent_env,
    condition,
    config_map_manifest,
    container_env,
    env_names,
    exec_sh,
    fingerprint,
    secret_manifest,
    short_id,
    volumes_of,
    wait_agent,
    workspace_manifest,
)

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
TIER1_TMPFS = {"/tmp": "rw,noexec,nosuid,size=64m"}
DOCKER_SOCKET_BIND = "/var/run/docker.sock:/var/run/docker.sock"
TIER2_CAPS = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "NET_BIND_SERVICE"]
# Those eight as the kernel's capability bits (linux/capability.h): 0, 1, 3, 4, 5, 6, 7 and 10.
TIER2_CAP_MASK = "00000000000004fb"
NO_CAPS = "0000000000000000"


def _redacted(entries: list[str], secret: str) -> list[str]:
    """Env entries with the value of any entry holding ``secret`` replaced by its fingerprint."""
    return [
        f"{entry.partition('=')[0]}=<sha {fingerprint(secret)}>" if secret in entry else entry
        for entry in entries
    ]


def test_env_is_the_controllers_variables_in_order_then_the_users_in_spec_order(ws: WorkspaceHarness) -> None:
    """WORKSPACE_ID (the uid) ... PYTHONPATH, AWARENESS_* only when set, then spec.env in spec order.

    Values come from a literal, a Secret and a ConfigMap (valueFrom); a user PYTHONPATH comes after the
    default one, so it is the one the agent sees. PLATFORM_URL is the controller's setting unless the
    Workspace sets spec.platformURL.
    """
    api_key = secrets.token_urlsafe(16)
    ws.apply(secret_manifest("agent-keys", {"api-key": api_key}))
    ws.apply(config_map_manifest("agent-settings", {"log-level": "debug"}))
    user_env = [
        {"name": "ZED_FIRST", "value": "literal"},
        {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "agent-keys", "key": "api-key"}}},
        {
            "name": "LOG_LEVEL",
            "valueFrom": {"configMapKeyRef": {"name": "agent-settings", "key": "log-level"}},
        },
        {"name": "PYTHONPATH", "value": "/opt/custom"},
        {"name": "ALPHA_LAST", "value": "a=b c"},
    ]
    ws.apply(
        workspace_manifest(
            "aware",
            {
                "tier": 2,
                "env": user_env,
                "awareness": {"namespace": "team-a", "url": "http://awareness.test:9000"},
            },
        )
    )
    ws.apply(workspace_manifest("plain", {"tier": 2, "platformURL": "http://platform.override:7000"}))
    ws.start_controller(PLATFORM_URL="http://platform.test:8080")

    aware = ws.wait_ready("aware")
    uid = aware["metadata"]["uid"]
    env = container_env(ws.container("aware"))
    start = env_names(env).index("WORKSPACE_ID")
    expected = [
        f"WORKSPACE_ID={uid}",
        "WORKSPACE_CONFIG_PATH=/configs",
        "PLATFORM_URL=http://platform.test:8080",
        "MOLECULE_URL=http://platform.test:8080",
        "TIER=2",
        "PLUGINS_DIR=/plugins",
        "PYTHONPATH=/app",
        "AWARENESS_NAMESPACE=team-a",
        "AWARENESS_URL=http://awareness.test:9000",
        "ZED_FIRST=literal",
        f"API_KEY={api_key}",
        "LOG_LEVEL=debug",
        "PYTHONPATH=/opt/custom",
        "ALPHA_LAST=a=b c",
    ]
    assert _redacted(env[start:], api_key) == _redacted(expected, api_key)

    seen = agent_env(aware["status"]["endpoint"])
    assert seen["WORKSPACE_ID"] == uid
    assert seen["PLATFORM_URL"] == seen["MOLECULE_URL"] == "http://platform.test:8080"
    assert seen["TIER"] == "2"
    assert seen["PYTHONPATH"] == "/opt/custom"  # the later duplicate wins
    assert fingerprint(seen["API_KEY"]) == fingerprint(api_key)
    assert seen["LOG_LEVEL"] == "debug"
    assert seen["ALPHA_LAST"] == "a=b c"

    plain = ws.wait_ready("plain")
    plain_env = container_env(ws.container("plain"))
    assert not [name for name in env_names(plain_env) if name.startswith("AWARENESS_")]
    assert "PLATFORM_URL=http://platform.override:7000" in plain_env
    assert "MOLECULE_URL=http://platform.override:7000" in plain_env
    assert env_names(plain_env)[-1] == "PYTHONPATH"  # the controller's last variable; no user env
    assert agent_env(plain["status"]["endpoint"])["PYTHONPATH"] == "/app"


def test_container_and_volumes_carry_labels_port_restart_policy_and_network(ws: WorkspaceHarness) -> None:
    """Labels on the container and both volumes, 8000 published on loopback as status.endpoint says,
    restart policy unless-stopped, and the workspace network with alias ws-<id12> (status.internalURL):
    another workspace reaches the agent there by name."""
    ws.apply(workspace_manifest("alpha", {"deletionPolicy": "Retain"}))
    ws.apply(workspace_manifest("beta"))
    ws.start_controller()
    alpha = ws.wait_ready("alpha")
    beta = ws.wait_ready("beta")
    uid = alpha["metadata"]["uid"]
    container = ws.container("alpha")
    attrs = container.attrs

    assert container.name == f"ws-{short_id(uid)}"
    owner = {
        MANAGED_LABEL: "true",
        INSTANCE_LABEL: ws.instance,
        UID_LABEL: uid,
        NAMESPACE_LABEL: ws.namespace,
        NAME_LABEL: "alpha",
        DELETION_POLICY_LABEL: "Retain",
    }
    labels = attrs["Config"]["Labels"]
    assert {key: labels.get(key) for key in owner} == owner
    assert len(labels[CONFIG_HASH_LABEL]) == 64
    assert alpha["status"]["container"]["configHash"] == labels[CONFIG_HASH_LABEL]
    volumes = volumes_of(ws.docker, uid)
    assert set(volumes) == {f"ws-{short_id(uid)}-configs", f"ws-{short_id(uid)}-workspace"}
    for volume in volumes.values():
        volume_labels = volume.attrs["Labels"] or {}
        assert {key: volume_labels.get(key) for key in owner} == owner, volume.name

    host = attrs["HostConfig"]
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert host["PortBindings"] == {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    published = attrs["NetworkSettings"]["Ports"]["8000/tcp"]
    assert [b["HostIp"] for b in published] == ["127.0.0.1"]
    assert alpha["status"]["endpoint"] == f"http://127.0.0.1:{published[0]['HostPort']}"
    wait_agent(alpha["status"]["endpoint"])

    networks = attrs["NetworkSettings"]["Networks"]
    assert list(networks) == [NETWORK]
    assert f"ws-{short_id(uid)}" in networks[NETWORK]["Aliases"]
    assert alpha["status"]["internalURL"] == f"http://ws-{short_id(uid)}:8000"
    assert alpha["status"]["container"]["id"] == container.id

    # From inside beta's container, alpha answers at its internal URL.
    answer = exec_sh(ws.container("beta"), f"wget -q -O - {alpha['status']['internalURL']}/health")
    assert answer.strip() == "ok"
    assert beta["status"]["internalURL"] != alpha["status"]["internalURL"]


def test_workspace_mount_follows_the_access_mode(ws: WorkspaceHarness, tmp_path: Path) -> None:
    """none: the named volume ws-<id12>-workspace even when a hostPath is given; read_only: the host
    directory with :ro (readable, not writable); read_write: the host directory, writes land on the host."""
    ro_dir = tmp_path / "ro"
    rw_dir = tmp_path / "rw"
    ignored_dir = tmp_path / "ignored"
    for directory in (ro_dir, rw_dir, ignored_dir):
        directory.mkdir()
    (ro_dir / "notes.txt").write_text("from the host\n")
    (ignored_dir / "marker").write_text("not mounted\n")

    # Host paths need a grant; access none needs none (the hostPath is ignored).
    ws.grant(
        hostPaths=[
            {"path": str(ro_dir), "access": "read_only"},
            {"path": str(rw_dir), "access": "read_write"},
        ]
    )
    ws.apply(workspace_manifest("none", {"workspace": {"hostPath": str(ignored_dir), "access": "none"}}))
    ws.apply(workspace_manifest("ro", {"workspace": {"hostPath": str(ro_dir), "access": "read_only"}}))
    ws.apply(workspace_manifest("rw", {"workspace": {"hostPath": str(rw_dir), "access": "read_write"}}))
    ws.start_controller()

    none_uid = ws.wait_ready("none")["metadata"]["uid"]
    none = ws.container("none")
    volume = f"ws-{short_id(none_uid)}-workspace"
    assert none.attrs["HostConfig"]["Binds"] == [
        f"ws-{short_id(none_uid)}-configs:/configs",
        f"{volume}:/workspace",
    ]
    assert volume in volumes_of(ws.docker, none_uid)
    assert "marker" not in exec_sh(none, "ls -A /workspace")

    ws.wait_ready("ro")
    ro = ws.container("ro")
    assert ro.attrs["HostConfig"]["Binds"][1] == f"{ro_dir}:/workspace:ro"
    assert exec_sh(ro, "cat /workspace/notes.txt") == "from the host\n"
    refused = ro.exec_run(["/bin/sh", "-c", "echo x > /workspace/new.txt"])
    assert refused.exit_code != 0
    assert not (ro_dir / "new.txt").exists()

    rw_uid = ws.wait_ready("rw")["metadata"]["uid"]
    rw = ws.container("rw")
    assert rw.attrs["HostConfig"]["Binds"][1] == f"{rw_dir}:/workspace"
    exec_sh(rw, "echo written-inside > /workspace/out.txt")
    assert (rw_dir / "out.txt").read_text() == "written-inside\n"
    # A host directory replaces the named volume: none is created for it.
    assert f"ws-{short_id(rw_uid)}-workspace" not in volumes_of(ws.docker, rw_uid)


def _wait_not_synced(ws: WorkspaceHarness, name: str, text: str) -> dict[str, Any]:
    """The Workspace once Synced=False for its generation with ``text`` in the message."""

    def refused(obj: dict[str, Any]) -> bool:
        synced = condition(obj, "Synced")
        return bool(
            synced
            and synced["status"] == "False"
            and synced.get("observedGeneration") == obj["metadata"]["generation"]
            and text in synced["message"]
        )

    return ws.wait_for(name, refused, f"Synced=False with {text!r}")


def _wait_start_refused(ws: WorkspaceHarness, name: str) -> Container:
    """Privileged containers cannot start on this test host: the controller leaves the container created
    and reports Synced=False with the start error. Returns that created container."""
    _wait_not_synced(ws, name, "failed to start container")
    container = ws.container(name)
    assert container.status == "created"
    return container


def _proc_status(container: Container) -> dict[str, str]:
    """`/proc/self/status` of a process exec'd in the container, as name -> value."""
    lines = exec_sh(container, "cat /proc/self/status").splitlines()
    return {name: value.strip() for name, _, value in (line.partition(":") for line in lines)}


def test_tier_host_configs_match_the_go_provisioner(ws: WorkspaceHarness) -> None:
    """Tiers 1-4 with the default limits, hardened beyond the Go provisioner.

    1: read-only root, tmpfs /tmp, only the /configs bind, 256 MiB and half a CPU, every capability
    dropped, no-new-privileges, at most 256 processes. 2: 512 MiB and one CPU, eight capabilities,
    no-new-privileges, 1024 processes. Both still become Ready: the agent needs none of what was taken.
    3: privileged, host PID, 2048 MiB, two CPUs. 4: four CPUs. Tier 3 is privileged, which this test host
    refuses to start: its HostConfig is checked on the created container (`docker inspect`), which the
    controller keeps while it reports Synced=False with the start error. Tier 4's other settings are
    checked in the next test: four CPUs are more than a smaller Docker host has, and the daemon then
    refuses to create the container at all, which the controller reports (Stalled=True, reason
    ContainerRejected) with the daemon's reason; on a host with four CPUs or more the created container
    carries NanoCpus 4e9. Tiers 3 and 4 are granted to the test's namespace by a WorkspacePolicy.
    """
    ws.grant(tiers=[3, 4], dockerSocket=True)
    for tier in (1, 2, 3, 4):
        ws.apply(workspace_manifest(f"tier{tier}", {"tier": tier}))
    ws.start_controller()

    uid1 = ws.wait_ready("tier1")["metadata"]["uid"]
    tier1 = ws.container("tier1")
    host1 = tier1.attrs["HostConfig"]
    assert host1["ReadonlyRootfs"] is True
    assert host1["Tmpfs"] == TIER1_TMPFS
    assert host1["Binds"] == [f"ws-{short_id(uid1)}-configs:/configs"]
    assert (host1["Memory"], host1["NanoCpus"]) == (256 * MIB, 500_000_000)
    assert host1["Privileged"] is False
    assert host1["CapDrop"] == ["ALL"]
    assert not host1["CapAdd"]
    assert host1["SecurityOpt"] == ["no-new-privileges"]
    assert host1["PidsLimit"] == 256
    assert set(volumes_of(ws.docker, uid1)) == {f"ws-{short_id(uid1)}-configs"}
    assert "TIER=1" in container_env(tier1)
    refused = tier1.exec_run(["/bin/sh", "-c", "echo x > /root-write-test"])
    assert refused.exit_code != 0  # the root filesystem is read-only
    status1 = _proc_status(tier1)
    assert (status1["CapEff"], status1["CapBnd"], status1["NoNewPrivs"]) == (NO_CAPS, NO_CAPS, "1")

    uid2 = ws.wait_ready("tier2")["metadata"]["uid"]
    tier2 = ws.container("tier2")
    host2 = tier2.attrs["HostConfig"]
    assert (host2["Memory"], host2["NanoCpus"]) == (512 * MIB, 1_000_000_000)
    assert host2["ReadonlyRootfs"] is False
    assert not host2.get("Tmpfs")
    assert host2["Privileged"] is False
    assert host2["PidMode"] == ""
    assert host2["CapDrop"] == ["ALL"]
    assert host2["CapAdd"] == TIER2_CAPS
    assert host2["SecurityOpt"] == ["no-new-privileges"]
    assert host2["PidsLimit"] == 1024
    assert host2["Binds"] == [
        f"ws-{short_id(uid2)}-configs:/configs",
        f"ws-{short_id(uid2)}-workspace:/workspace",
    ]
    status2 = _proc_status(tier2)
    assert (status2["CapEff"], status2["CapBnd"], status2["NoNewPrivs"]) == (
        TIER2_CAP_MASK,
        TIER2_CAP_MASK,
        "1",
    )

    tier3 = _wait_start_refused(ws, "tier3")
    host3 = tier3.attrs["HostConfig"]
    assert host3["Privileged"] is True
    assert host3["PidMode"] == "host"
    assert (host3["Memory"], host3["NanoCpus"]) == (2048 * MIB, 2_000_000_000)
    assert host3["NetworkMode"] != "host"
    assert list(tier3.attrs["NetworkSettings"]["Networks"]) == [NETWORK]
    assert DOCKER_SOCKET_BIND not in host3["Binds"]

    cpus = int(ws.docker.info()["NCPU"])
    if cpus >= 4:
        host4 = _wait_start_refused(ws, "tier4").attrs["HostConfig"]
        assert (host4["Memory"], host4["NanoCpus"]) == (4096 * MIB, 4_000_000_000)
    else:
        refused4 = _wait_not_synced(ws, "tier4", f"only {cpus} CPUs available")
        # Retrying the same spec cannot help: terminal, so GitOps tools stop waiting.
        assert (condition(refused4, "Stalled") or {}).get("reason") == "ContainerRejected"
        assert ws.containers("tier4") == []


def test_tier1_limits_and_pids_limits_follow_the_settings(ws: WorkspaceHarness) -> None:
    """TIER1_MEMORY_MB, TIER1_CPU_SHARES and TIER{1,2}_PIDS_LIMIT override the defaults; a value that is
    not a positive integer keeps the default, as for the other tier settings."""
    for tier in (1, 2):
        ws.apply(workspace_manifest(f"tier{tier}", {"tier": tier}))
    ws.start_controller(
        TIER1_MEMORY_MB="128",
        TIER1_CPU_SHARES="not-a-number",
        TIER1_PIDS_LIMIT="64",
        TIER2_PIDS_LIMIT="0",
    )
    ws.wait_ready("tier1")
    host1 = ws.container("tier1").attrs["HostConfig"]
    assert (host1["Memory"], host1["NanoCpus"], host1["PidsLimit"]) == (128 * MIB, 500_000_000, 64)

    ws.wait_ready("tier2")
    host2 = ws.container("tier2").attrs["HostConfig"]
    assert (host2["Memory"], host2["NanoCpus"], host2["PidsLimit"]) == (512 * MIB, 1_000_000_000, 1024)


def test_tier_limits_follow_the_settings_and_tier4_joins_the_host(ws: WorkspaceHarness) -> None:
    """TIER{2,3,4}_MEMORY_MB and _CPU_SHARES override the defaults (shares / 1024 = CPUs, a NanoCPUs cap);
    a value that is not a positive integer keeps the default, as in the Go provisioner.

    Tier 4 is privileged with host PID and host network and binds the Docker socket last. Tiers 3 and 4
    are privileged, which this test host refuses to start: checked on the created container
    (`docker inspect`), which the controller keeps while it reports Synced=False with the start error.
    The Docker socket is granted to the namespace along with tiers 3 and 4.
    """
    ws.grant(tiers=[3, 4], dockerSocket=True)
    for tier in (2, 3, 4):
        ws.apply(workspace_manifest(f"tier{tier}", {"tier": tier}))
    ws.start_controller(
        TIER2_MEMORY_MB="256",
        TIER2_CPU_SHARES="512",
        TIER3_MEMORY_MB="3072",
        TIER3_CPU_SHARES="not-a-number",
        TIER4_MEMORY_MB="0",
        TIER4_CPU_SHARES="1536",
    )
    ws.wait_ready("tier2")
    host2 = ws.container("tier2").attrs["HostConfig"]
    assert (host2["Memory"], host2["NanoCpus"]) == (256 * MIB, 500_000_000)

    host3 = _wait_start_refused(ws, "tier3").attrs["HostConfig"]
    assert (host3["Memory"], host3["NanoCpus"]) == (3072 * MIB, 2_000_000_000)

    tier4 = _wait_start_refused(ws, "tier4")
    uid4 = ws.uid("tier4")
    host4 = tier4.attrs["HostConfig"]
    assert (host4["Memory"], host4["NanoCpus"]) == (4096 * MIB, 1_500_000_000)
    assert host4["Privileged"] is True
    assert host4["PidMode"] == "host"
    assert host4["NetworkMode"] == "host"
    assert host4["Binds"][0] == f"ws-{short_id(uid4)}-configs:/configs"
    assert host4["Binds"][-1] == DOCKER_SOCKET_BIND
    assert not host4.get("PortBindings")
    assert list(tier4.attrs["NetworkSettings"]["Networks"]) == ["host"]
