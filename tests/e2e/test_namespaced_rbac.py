"""The controller confined to one namespace (`-n`), with only deploy/namespaced's Role: it does its job.

Its identity is a user with a client certificate of the cluster's CA and nothing but the shipped Role,
bound in the test's namespace. With it the controller reconciles a Workspace to Ready, sweeps an orphan
of that namespace, leaves alone one naming a namespace it may not see, fails closed on grants it may not
read (a tier 3 granted by a WorkspacePolicy stays denied), and releases its finalizer on deletion.
"""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.controller_process import ControllerProcess
from tests.support.kubectl import Kubectl, KubectlError
from tests.support.metrics import ControllerMetrics
from tests.support.polling import wait_until
from tests.support.stack import REPO, ControlPlane, Registry
from tests.support.workspaces import (
    DELETION_POLICY_LABEL,
    INSTANCE_LABEL,
    MANAGED_LABEL,
    NAME_LABEL,
    NAMESPACE_LABEL,
    UID_LABEL,
    WorkspaceHarness,
    containers_of,
    workspace_manifest,
)

pytestmark = pytest.mark.e2e

ROLE = REPO / "deploy" / "namespaced" / "rbac.yaml"
FAST_SWEEP = {"WC_SWEEP_INTERVAL": "1", "WC_SWEEP_GRACE": "0"}


def confined_identity(control_plane: ControlPlane, installed: Kubectl, namespace: str) -> tuple[str, Path]:
    """A user bound to deploy/namespaced's Role in `namespace`, and nothing else: its name and kubeconfig."""
    user = f"confined-{secrets.token_hex(4)}"
    kubeconfig = control_plane.user_kubeconfig(user)
    documents: list[dict[str, Any]] = [d for d in yaml.safe_load_all(ROLE.read_text()) if d]
    for document in documents:
        document["metadata"]["namespace"] = namespace
        if document["kind"] == "RoleBinding":
            document["subjects"] = [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]
    installed.run("apply", "-f", "-", stdin=yaml.safe_dump_all(documents))
    return user, kubeconfig


def can(installed: Kubectl, user: str, *query: str) -> bool:
    try:
        return installed.run("auth", "can-i", *query, "--as", user).strip() == "yes"
    except KubectlError:
        return False  # `can-i` exits non-zero for "no"


def orphan_labels(instance: str, namespace: str) -> dict[str, str]:
    return {
        MANAGED_LABEL: "true",
        INSTANCE_LABEL: instance,
        UID_LABEL: str(uuid.uuid4()),
        NAMESPACE_LABEL: namespace,
        NAME_LABEL: "gone",
        DELETION_POLICY_LABEL: "Delete",
    }


def test_a_controller_with_only_the_namespaced_role_reconciles_sweeps_and_fails_closed(
    ws: WorkspaceHarness, control_plane: ControlPlane, installed: Kubectl, registry: Registry
) -> None:
    user, kubeconfig = confined_identity(control_plane, installed, ws.namespace)
    # The identity really is confined: nothing cluster-wide, nothing in other namespaces.
    assert can(installed, user, "list", "workspaces.molecule.ai", "-n", ws.namespace)
    assert not can(installed, user, "list", "workspaces.molecule.ai", "--all-namespaces")
    assert not can(installed, user, "list", "workspacepolicies.molecule.ai")
    assert not can(installed, user, "get", "namespaces")
    assert not can(installed, user, "get", "secrets", "-n", "default")

    # A tier 3 grant the confined controller cannot read.
    ws.grant(tiers=[1, 2, 3])
    proc: ControllerProcess = ws.start_controller(
        "--namespace", ws.namespace, KUBECONFIG=str(kubeconfig), **FAST_SWEEP
    )
    metrics = ControllerMetrics.of(proc)

    ws.apply(workspace_manifest("confined"))
    ready = ws.wait_ready("confined")
    uid = ready["metadata"]["uid"]
    (container,) = containers_of(ws.docker, uid)
    assert container.status == "running"

    ws.apply(workspace_manifest("privileged", {"tier": 3}))
    denied = ws.wait_stalled("privileged", "PolicyDenied")
    assert "tier 3" in denied["message"]
    assert not containers_of(ws.docker, ws.uid("privileged")), "a denied Workspace gets no container"

    # An orphan of this namespace is swept; the pass could list this namespace's Workspaces.
    image = registry.image("langgraph")
    mine = ws.docker.containers.create(image, labels=orphan_labels(ws.instance, ws.namespace))
    elsewhere = None
    try:
        wait_until(
            lambda: not ws.docker.containers.list(all=True, filters={"id": mine.id}),
            timeout=30,
            what="the orphan of the controller's namespace swept",
        )
        # One naming a namespace the controller may not list fails the pass: nothing is removed.
        elsewhere = ws.docker.containers.create(image, labels=orphan_labels(ws.instance, "kube-system"))
        skipped = metrics.sweep_passes("skipped")
        wait_until(
            lambda: metrics.sweep_passes("skipped") >= skipped + 2,
            timeout=30,
            what="two sweep passes skipped",
        )
        assert ws.docker.containers.list(all=True, filters={"id": elsewhere.id}), "not its to judge"
    finally:
        if elsewhere is not None:
            elsewhere.remove(force=True)

    # Deletion runs the controller's finalizer under the Role alone: container gone, object gone.
    ws.kubectl.run("delete", "workspace", "confined", "--timeout=60s", timeout=90)
    wait_until(lambda: not containers_of(ws.docker, uid), timeout=30, what="the container removed")
    assert ws.kubectl.run("get", "workspace", "--ignore-not-found", "-o", "name").split() == [
        "workspace.molecule.ai/privileged"
    ]
    assert proc.running
    logs = ws.controller_logs()
    assert "may not be listed (RBAC)" in logs, "the fail-closed grant is said, not silent"
    assert "Traceback" not in logs
