"""Serving the Molecule platform through the real stack: its workspace IDs name everything, a second
claim on an ID touches nothing of the first, what its Go provisioner made is taken over with the agents'
data (and never swept), its tokens are never overwritten, and files it owns in /configs are kept."""

from __future__ import annotations

import contextlib
import io
import secrets
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import docker
import docker.errors
import pytest
from docker.models.containers import Container
from docker.models.volumes import Volume

from tests.support.kubectl import KubectlError
from tests.support.metrics import ControllerMetrics
from tests.support.polling import wait_until
from tests.support.stack import Registry
from tests.support.workspaces import (
    INSTANCE_LABEL,
    MANAGED_LABEL,
    NETWORK,
    UID_LABEL,
    WorkspaceHarness,
    agent_configs,
    agent_env,
    exec_sh,
    fingerprint,
    secret_manifest,
    wait_agent,
    workspace_manifest,
)

pytestmark = pytest.mark.e2e

FAST_SWEEP = {"WC_SWEEP_INTERVAL": "1", "WC_SWEEP_GRACE": "0"}
GO_LABELS = {MANAGED_LABEL: "true"}


def seed(name: str, policy: str = "IfNotPresent") -> dict[str, object]:
    """A config whose config.yaml is only a seed: the volume's copy (the platform's) wins."""
    content = f"name: {name}\nruntime: langgraph\n"
    return {"files": [{"path": "config.yaml", "content": content, "writePolicy": policy}]}


def tar_of(files: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path, (content, mode) in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(content), mode
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@dataclass
class GoWorkspace:
    """A workspace exactly as the Go provisioner leaves one: `ws-<id12>` with only the managed label, a
    config volume made unlabelled by the token pre-write (its bug B6), a labelled claude-sessions volume,
    and `ws-<full id>-workspace` made by the bind; the token written before start, config.yaml and the
    agent's own state after."""

    client: docker.DockerClient
    image: str
    workspace_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    container: Container | None = None

    @property
    def short(self) -> str:
        return self.workspace_id[:12]

    @property
    def volume_names(self) -> list[str]:
        return [
            f"ws-{self.short}-configs",
            f"ws-{self.short}-claude-sessions",
            f"ws-{self.workspace_id}-workspace",
        ]

    def make(self) -> None:
        configs, sessions, workspace = self.volume_names
        # The token pre-write: a helper container binds the config volume, which Docker makes unlabelled.
        self.client.containers.run(
            self.image,
            ["printf '%s' \"$TOKEN\" > /vol/.auth_token && chmod 0600 /vol/.auth_token"],
            entrypoint=["/bin/sh", "-c"],
            environment={"TOKEN": self.token},
            volumes={configs: {"bind": "/vol", "mode": "rw"}},
            remove=True,
        )
        self.client.volumes.create(name=sessions, labels=GO_LABELS)
        self.container = self.client.containers.run(
            self.image,
            name=f"ws-{self.short}",
            labels=GO_LABELS,
            environment={"WORKSPACE_ID": self.workspace_id, "WORKSPACE_CONFIG_PATH": "/configs"},
            volumes={
                configs: {"bind": "/configs", "mode": "rw"},
                workspace: {"bind": "/workspace", "mode": "rw"},
                sessions: {"bind": "/root/.claude/sessions", "mode": "rw"},
            },
            network=NETWORK,
            ports={"8000/tcp": ("127.0.0.1", None)},
            restart_policy={"Name": "unless-stopped"},
            detach=True,
        )
        # After start, as the Go provisioner copies them, and what the agent wrote since.
        files = {
            "config.yaml": (b"name: from-the-platform\nruntime: langgraph\n", 0o644),
            "memory/notes.md": (b"what the agent learned\n", 0o644),
        }
        assert self.container.put_archive("/configs", tar_of(files))
        exec_sh(self.container, "mkdir -p /workspace/repo && echo checkout > /workspace/repo/HEAD")
        exec_sh(self.container, "echo session-1 > /root/.claude/sessions/last")

    def exists(self) -> dict[str, bool]:
        found = {}
        for name in self.volume_names:
            try:
                self.client.volumes.get(name)
                found[name] = True
            except docker.errors.NotFound:
                found[name] = False
        return found

    def remove(self) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.client.containers.get(f"ws-{self.short}").remove(force=True)
        for name in self.volume_names:
            with contextlib.suppress(docker.errors.NotFound):
                volume: Volume = self.client.volumes.get(name)
                volume.remove(force=True)


@pytest.fixture
def go_workspace(docker_client: docker.DockerClient, registry: Registry) -> Iterator[GoWorkspace]:
    made = GoWorkspace(docker_client, registry.image("langgraph"))
    yield made
    made.remove()


def wait_passes(metrics: ControllerMetrics, more: int) -> None:
    start = metrics.sweep_passes("completed")
    wait_until(
        lambda: metrics.sweep_passes("completed") >= start + more,
        timeout=30,
        what=f"{more} more sweep passes",
    )


def by_name(ws: WorkspaceHarness, name: str) -> Container:
    container: Container = ws.docker.containers.get(name)
    return container


# --- taking over the Go provisioner's workspace ------------------------------------------------------------


def test_the_go_provisioners_workspace_is_taken_over_with_its_data_and_never_swept(
    ws: WorkspaceHarness, go_workspace: GoWorkspace
) -> None:
    go = go_workspace
    go.make()
    assert go.container is not None
    go_id = go.container.id
    ws.grant(platformIdentity=True)
    proc = ws.start_controller(**FAST_SWEEP)
    metrics = ControllerMetrics.of(proc)
    wait_passes(metrics, 3)
    assert all(go.exists().values())
    assert by_name(ws, f"ws-{go.short}").id == go_id  # the sweep left it alone

    # Asked for by ID, without the opt-in: a conflict that says how to take it over; nothing touched.
    manifest = {"workspaceID": go.workspace_id, "runtime": "claude-code", "config": seed("taken")}
    ws.apply(workspace_manifest("taken", manifest))
    stalled = ws.wait_stalled("taken", "NameConflict")
    assert "made by the Go provisioner" in stalled["message"]
    assert "spec.adopt: true" in stalled["message"]
    assert by_name(ws, f"ws-{go.short}").id == go_id

    ws.patch_spec("taken", {"adopt": True})
    obj = ws.wait_for("taken", lambda o: (o.get("status") or {}).get("adopted"), "status.adopted")
    obj = ws.wait_ready("taken")
    status = obj["status"]
    assert status["workspaceID"] == go.workspace_id
    assert status["internalURL"] == f"http://ws-{go.short}:8000"
    assert status["adopted"]["container"] == f"ws-{go.short} ({go_id[:12]})"
    assert sorted(status["adopted"]["volumes"]) == sorted(go.volume_names)
    assert "Adopted" in ws.event_reasons("taken")

    container = by_name(ws, f"ws-{go.short}")
    assert container.id != go_id
    assert container.labels[INSTANCE_LABEL] == ws.instance
    assert container.labels[UID_LABEL] == obj["metadata"]["uid"]
    endpoint = status["endpoint"]
    wait_agent(endpoint)
    assert agent_env(endpoint)["WORKSPACE_ID"] == go.workspace_id
    files = agent_configs(endpoint)
    assert files["config.yaml"].content == b"name: from-the-platform\nruntime: langgraph\n"
    assert files["memory/notes.md"].content == b"what the agent learned\n"
    assert fingerprint(files[".auth_token"].content.decode()) == fingerprint(go.token)
    assert (
        exec_sh(container, "cat /workspace/repo/HEAD /root/.claude/sessions/last") == "checkout\nsession-1\n"
    )

    # Taken over, still never swept: the volumes carry no labels of ours and stay.
    wait_passes(metrics, 3)
    assert all(go.exists().values())
    assert by_name(ws, f"ws-{go.short}").id == container.id
    assert go.token not in ws.controller_logs()


# --- the platform's ID -------------------------------------------------------------------------------------


def test_a_second_claim_on_an_id_is_stalled_and_touches_nothing_of_the_first(ws: WorkspaceHarness) -> None:
    platform_id = str(uuid.uuid4())
    short = platform_id[:12]
    ws.grant(platformIdentity=True)
    ws.start_controller()
    ws.apply(workspace_manifest("first", {"workspaceID": platform_id}))
    first = ws.wait_ready("first")
    container = by_name(ws, f"ws-{short}")
    assert agent_env(first["status"]["endpoint"])["WORKSPACE_ID"] == platform_id

    ws.apply(workspace_manifest("second", {"workspaceID": platform_id}))
    stalled = ws.wait_stalled("second", "IDConflict")
    assert f"Workspace {ws.namespace}/first" in stalled["message"]
    assert ws.containers("second") == []

    # Immutable: neither changed nor removed.
    for patch in ({"workspaceID": str(uuid.uuid4())}, {"workspaceID": None}):
        with pytest.raises(KubectlError, match=r"spec\.workspaceID is immutable"):
            ws.patch_spec("first", patch)

    # The second one goes: the first's container and volumes are not touched.
    volumes = {v.name for v in ws.docker.volumes.list(filters={"name": f"ws-{short}"})}
    ws.kubectl.run("delete", "workspace", "second", "--timeout=60s")
    assert by_name(ws, f"ws-{short}").id == container.id
    assert {v.name for v in ws.docker.volumes.list(filters={"name": f"ws-{short}"})} == volumes

    # Claimed again, then the holder goes: the claimant is woken and takes the ID.
    ws.apply(workspace_manifest("second", {"workspaceID": platform_id}))
    ws.wait_stalled("second", "IDConflict")
    ws.kubectl.run("delete", "workspace", "first", "--timeout=60s")
    second = ws.wait_ready("second")
    assert second["status"]["workspaceID"] == platform_id
    assert by_name(ws, f"ws-{short}").labels[UID_LABEL] == second["metadata"]["uid"]


def test_an_id_docker_cannot_name_anything_by_is_refused_at_apply(ws: WorkspaceHarness) -> None:
    with pytest.raises(KubectlError, match=r"spec\.workspaceID"):
        ws.apply(workspace_manifest("bad-id", {"workspaceID": "../../etc"}))
    with pytest.raises(KubectlError, match="authToken sets exactly one of secretRef or generate: true"):
        ws.apply(workspace_manifest("bad-token", {"authToken": {}}))


# --- tokens and files the platform owns --------------------------------------------------------------------


def test_a_token_the_agent_saved_survives_a_recreate_and_the_platforms_secret_is_rotated(
    ws: WorkspaceHarness,
) -> None:
    ws.apply(secret_manifest("platform-token", {"token": "issued-1"}))
    ws.apply(workspace_manifest("generated", {"authToken": {"generate": True}}))
    ws.apply(workspace_manifest("handed", {"authToken": {"secretRef": {"name": "platform-token"}}}))
    ws.start_controller()

    generated = ws.wait_ready("generated")
    container = ws.container("generated")
    # The agent registers and saves the token the platform issued it over the generated one.
    exec_sh(container, "printf 'from-registration' > /configs/.auth_token")
    ws.patch_spec("generated", {"restartRequestedAt": "recreate-1"})
    recreated = ws.wait_for(
        "generated",
        lambda o: (o.get("status") or {}).get("lastHandledRestartAt") == "recreate-1",
        "the recreate",
    )
    assert ws.container("generated").id != container.id
    assert recreated["status"]["authTokenSecretName"] == "generated-auth-token"
    token = agent_configs(ws.wait_ready("generated")["status"]["endpoint"])[".auth_token"]
    assert (token.content, token.mode) == (b"from-registration", "600")
    del generated

    handed = ws.wait_ready("handed")
    assert agent_configs(handed["status"]["endpoint"])[".auth_token"].content == b"issued-1"
    before = ws.container("handed").id
    ws.apply(secret_manifest("platform-token", {"token": "issued-2"}))
    ws.wait_for(
        "handed",
        lambda o: (o["status"].get("container") or {}).get("id") not in (None, before),
        "a new container",
    )
    rotated = ws.wait_ready("handed")
    assert agent_configs(rotated["status"]["endpoint"])[".auth_token"].content == b"issued-2"


def test_a_file_written_if_not_present_keeps_the_platforms_edits_across_a_drift_recreate(
    ws: WorkspaceHarness,
) -> None:
    config = {
        "files": [
            {"path": "config.yaml", "content": "name: owned\n", "writePolicy": "IfNotPresent"},
            {"path": "rules.md", "content": "the spec's rules\n"},
        ]
    }
    ws.apply(workspace_manifest("owned", {"config": config}))
    ws.start_controller()
    ws.wait_ready("owned")
    container = ws.container("owned")
    # The Files API edits both; someone removes the container by hand (drift): it is made again.
    exec_sh(container, "echo 'name: edited' > /configs/config.yaml && echo edited > /configs/rules.md")
    container.remove(force=True)
    obj = ws.wait_for(
        "owned",
        lambda o: (
            (o["status"].get("container") or {}).get("id") not in (None, container.id)
            and o["status"]["container"].get("state") == "running"
        ),
        "a new running container",
    )
    files = agent_configs(ws.wait_ready("owned")["status"]["endpoint"])
    assert files["config.yaml"].content == b"name: edited\n"
    assert files["rules.md"].content == b"the spec's rules\n"
    assert obj["status"]["workspaceID"] == obj["metadata"]["uid"]
