"""The largest Workspace the schema admits, through the real apiserver: applied client-side (kubectl copies
it into its last-applied annotation) and server-side, it becomes Ready, takes an update, and is deleted
with its finalizer released. The controller keeps no copy of the spec in the object (kopf's diff base
would not fit next to kubectl's), so nothing it writes can outgrow the object's limits.
"""

from __future__ import annotations

import json

import pytest

from controller.api.workspace import MAX_WORKSPACE_NAME_LENGTH
from tests.support.largest import (
    ANNOTATIONS_LIMIT,
    LAST_APPLIED,
    MAX_IMAGE_PULL_SECRETS,
    dns_subdomain,
    largest_host_selector,
    largest_workspace,
    last_applied_size,
)
from tests.support.polling import wait_until
from tests.support.relay import daemon_socket_path
from tests.support.stack import Registry
from tests.support.workspaces import (
    WorkspaceHarness,
    docker_config_secret_manifest,
    is_ready,
    secret_manifest,
)

pytestmark = pytest.mark.e2e

DELETE_TIMEOUT = 60.0


@pytest.mark.parametrize("server_side", [False, True], ids=["client-side-apply", "server-side-apply"])
def test_the_largest_workspace_is_created_updated_ready_and_deleted(
    ws: WorkspaceHarness, registry: Registry, server_side: bool
) -> None:
    pull_secrets = [dns_subdomain(253, f"pull{i}") for i in range(MAX_IMAGE_PULL_SECRETS)]
    for secret in pull_secrets:
        ws.apply(docker_config_secret_manifest(secret, "unused.invalid", "nobody", "nothing"))
    token_secret = dns_subdomain(253, "token")
    ws.apply(secret_manifest(token_secret, {"k" * 253: "a-token"}))
    name = dns_subdomain(MAX_WORKSPACE_NAME_LENGTH, "big")
    manifest = largest_workspace(
        name=name,
        namespace=ws.namespace,
        image=registry.image("langgraph"),
        pull_secrets=pull_secrets,
        token_secret=token_secret,
    )
    apply = ["apply", "--server-side", "--field-manager=e2e"] if server_side else ["apply"]
    # The only host is one carrying the labels the largest host selector asks for.
    socket_path = daemon_socket_path()
    assert socket_path is not None
    labels = largest_host_selector()["matchLabels"]
    host = ws.add_host("big", f"unix://{socket_path}", labels=labels)
    ws.start_controller(WC_LOCAL_HOST="")

    ws.kubectl.run(*apply, "-f", "-", stdin=json.dumps(manifest))
    first = ws.wait_ready(name)
    assert first["status"]["host"] == host
    annotations = first["metadata"].get("annotations") or {}
    assert not [key for key in annotations if key.startswith("kopf.zalando.org/")]
    if server_side:
        assert LAST_APPLIED not in annotations
    else:
        stored = len(LAST_APPLIED) + len(annotations[LAST_APPLIED].encode())
        print(f"\nlast-applied-configuration: {stored} bytes (limit {ANNOTATIONS_LIMIT})")
        assert stored <= last_applied_size(manifest) + 1024  # kubectl's own spelling, about the same
    container = ws.container(name)
    assert container.status == "running"

    manifest["spec"]["restartRequestedAt"] = "r" * 64
    ws.kubectl.run(*apply, "-f", "-", stdin=json.dumps(manifest))
    updated = ws.wait_for(
        name,
        lambda obj: is_ready(obj) and obj["status"].get("lastHandledRestartAt") == "r" * 64,
        "Ready after the update",
    )
    assert updated["status"]["container"]["id"] != container.id
    uid = updated["metadata"]["uid"]

    ws.kubectl.run("delete", "--wait=false", "workspace", name)
    wait_until(
        lambda: name not in ws.kubectl.run("get", "workspaces", "-o", "name"),
        timeout=DELETE_TIMEOUT,
        what="the largest Workspace gone (finalizer released)",
    )
    assert ws.docker.containers.list(all=True, filters={"label": f"molecule.ai/workspace-uid={uid}"}) == []
