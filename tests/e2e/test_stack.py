"""The local stack is real: each part does what the controller's tests rely on it to do."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import docker
import pytest

from tests.support.kubectl import Kubectl, KubectlError
from tests.support.polling import wait_until
from tests.support.stack import ControlPlane, Registry, push_test_images, start_registry

pytestmark = pytest.mark.e2e


def test_apiserver_reports_the_pinned_release(kubectl: Kubectl) -> None:
    version = json.loads(kubectl.run("version", "-o", "json"))
    assert version["serverVersion"]["gitVersion"] == "v1.37.2"
    assert version["clientVersion"]["gitVersion"] == "v1.37.2"


def test_workspace_crd_serves_printer_columns_and_a_status_subresource(
    installed: Kubectl, namespace: str
) -> None:
    ns = installed.in_namespace(namespace)
    ns.apply(
        "apiVersion: molecule.ai/v1alpha1\nkind: Workspace\nmetadata: {name: columns}\n"
        "spec:\n  runtime: hermes\n  tier: 3\n"
    )
    # A write to /status is visible; the same field sent through the main resource is not (the
    # status subresource is enabled, so the main endpoint ignores status).
    ns.run(
        "patch",
        "workspace",
        "columns",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(
            {
                "status": {
                    "endpoint": "http://127.0.0.1:40123",
                    # What the controller resolves the spec to: the columns show it.
                    "runtime": "hermes",
                    "tier": 3,
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "ContainerRunning",
                            "message": "up",
                            "lastTransitionTime": "2026-01-01T00:00:00Z",
                            "observedGeneration": 1,
                        }
                    ],
                }
            }
        ),
    )
    ns.run(
        "patch",
        "workspace",
        "columns",
        "--type=merge",
        "-p",
        json.dumps({"status": {"endpoint": "http://ignored"}}),
    )
    obj = ns.get_json("workspace", "columns")
    assert obj["status"]["endpoint"] == "http://127.0.0.1:40123"

    table = ns.run("get", "ws", "columns").splitlines()
    header = table[0].split()
    assert header == ["NAME", "RUNTIME", "TIER", "READY", "REASON", "ENDPOINT", "AGE"]
    row = dict(zip(header, table[1].split(), strict=False))
    assert row["RUNTIME"] == "hermes"
    assert row["TIER"] == "3"
    assert row["READY"] == "True"
    assert row["REASON"] == "ContainerRunning"
    assert row["ENDPOINT"] == "http://127.0.0.1:40123"
    # No controller has put a finalizer on it: it goes at once, and no later test's controller sees it.
    ns.run("delete", "workspace", "columns")


def test_controller_identity_is_not_admin(control_plane: ControlPlane, installed: Kubectl) -> None:
    as_controller = Kubectl(control_plane.kubectl, control_plane.controller_kubeconfig)
    # deploy/'s RBAC grants it Workspaces, but nothing like deleting namespaces or reading nodes.
    assert as_controller.run("auth", "can-i", "list", "workspaces.molecule.ai", "-A").strip() == "yes"
    assert as_controller.run("auth", "can-i", "delete", "namespaces", check=False).strip() == "no"
    with pytest.raises(KubectlError, match="forbidden"):
        as_controller.run("get", "nodes")


def test_container_from_the_test_image_answers_on_its_loopback_port(
    docker_client: docker.DockerClient, registry: Registry
) -> None:
    container = docker_client.containers.run(
        registry.image("langgraph"),
        detach=True,
        environment={"HARNESS_MARK": "seen"},
        ports={"8000/tcp": ("127.0.0.1", None)},
        labels={"workspace-controller.test": "harness"},
    )
    try:

        def published() -> str | None:
            container.reload()
            bindings = container.attrs["NetworkSettings"]["Ports"].get("8000/tcp") or []
            return bindings[0]["HostPort"] if bindings else None

        port = wait_until(published, timeout=10, what="port published")
        base = f"http://127.0.0.1:{port}"
        health = wait_until(
            lambda: urllib.request.urlopen(f"{base}/health", timeout=2).read(), timeout=10, what="/health"
        )
        assert health.strip() == b"ok"
        env = urllib.request.urlopen(f"{base}/cgi-bin/env", timeout=2).read().decode()
        assert "HARNESS_MARK=seen" in env.splitlines()
        status = wait_until(
            lambda: container.reload() or container.attrs["State"]["Health"]["Status"] == "healthy",
            timeout=20,
            what="HEALTHCHECK healthy",
        )
        assert status
    finally:
        container.remove(force=True)


def _pull(ref: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "pull", ref], capture_output=True, text=True)


def test_registry_push_and_pull_without_credentials(
    docker_client: docker.DockerClient, registry: Registry
) -> None:
    ref = registry.image("codex", "harness-open")
    docker_client.images.get(registry.image("codex")).tag(ref)
    docker_client.images.push(ref)
    docker_client.images.remove(ref)
    assert _pull(ref).returncode == 0
    assert docker_client.images.get(ref).id == docker_client.images.get(registry.image("codex")).id


def test_registry_with_htpasswd_refuses_anonymous_and_serves_credentials(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    reg = start_registry("harness-auth", tmp_path, with_auth=True)
    try:
        push_test_images(reg, tag="harness")  # logs in with the credentials, pushes, logs out
        ref = reg.image("hermes", "harness")
        docker_client.images.remove(ref)
        refused = _pull(ref)
        assert refused.returncode != 0
        assert "no basic auth credentials" in refused.stderr or "unauthorized" in refused.stderr
        auth = {"username": reg.username, "password": reg.password}
        pulled = docker_client.images.pull(ref, auth_config=auth)
        assert ref in pulled.tags
    finally:
        reg.stop()
