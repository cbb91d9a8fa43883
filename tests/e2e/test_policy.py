"""Multi-tenant safety: what a namespace's Workspaces may ask for, enforced at `kubectl apply` by deploy/'s
ValidatingAdmissionPolicy and again by the controller, against the real kube-apiserver and Docker.

The hostile Workspaces are the ones a tenant with RBAC on `workspaces` could write: the host's Docker
socket, its root, /root and /run as host paths; privileged tiers; images from anywhere. Without a grant
each is refused at apply with a message that names the rule and how an admin grants it; with the
admission policy absent the controller refuses the same ones (Stalled/PolicyDenied, the same message)
and creates nothing. Granted, they work; a grant withdrawn stops the container and says so.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.core.policy import host_path_message, image_message, tier_message
from tests.support.kubectl import Kubectl, KubectlError
from tests.support.metrics import ControllerMetrics
from tests.support.polling import wait_until
from tests.support.stack import REPO, Registry
from tests.support.workspaces import (
    WorkspaceHarness,
    condition,
    exec_sh,
    is_ready,
    policy_manifest,
    stalled_reason,
    workspace_manifest,
)

pytestmark = pytest.mark.e2e

ADMISSION = REPO / "deploy" / "admission" / "workspace-policy.yaml"
DENIED_GAUGE = "workspace_controller_workspace_policy_denied"
ADMISSION_TIMEOUT = 90.0
"""The apiserver picks up a new admission policy (and its parameter) within seconds; this bounds a failure."""


@pytest.fixture
def admission(installed: Kubectl) -> Iterator[None]:
    """deploy/'s admission policy and binding, installed as shipped, and removed after the test (the
    session's other tests run without it)."""
    installed.run("apply", "-f", str(ADMISSION))
    yield
    installed.run("delete", "--ignore-not-found", "-f", str(ADMISSION))
    # The apiserver drops a deleted policy from its admission cache a moment later: the next test must
    # not meet it (a dry run of what it refused is admitted again).
    probe = installed.in_namespace("default")

    def lifted() -> bool:
        manifest = workspace_manifest(f"probe-{uuid.uuid4().hex[:6]}", {"tier": 4})
        probe.run("apply", "--dry-run=server", "-f", "-", stdin=manifest)
        return True

    wait_until(lifted, timeout=ADMISSION_TIMEOUT, what="the admission policy no longer enforced")


def refused(ws: WorkspaceHarness, manifest: str) -> str:
    """The apiserver's refusal of `manifest` (it must be refused)."""
    with pytest.raises(KubectlError) as caught:
        ws.apply(manifest)
    return str(caught.value)


def wait_admission_active(
    ws: WorkspaceHarness, *, refuses: dict[str, Any], admits: dict[str, Any] | None = None
) -> None:
    """Until admission judges Workspaces by this test's grants: `refuses` is refused and `admits` (when
    given) admitted. Dry runs: nothing is stored. The grants reach the apiserver through the controller's
    EffectiveWorkspacePolicy, so this also waits for the controller to have published them."""

    def judging() -> bool:
        name = f"probe-{uuid.uuid4().hex[:6]}"
        try:
            ws.kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=workspace_manifest(name, refuses))
        except KubectlError as exc:
            if "is not granted to namespace" not in str(exc):
                return False
        else:
            return False
        if admits is not None:
            try:
                ws.kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=workspace_manifest(name, admits))
            except KubectlError:
                return False
        return True

    wait_until(
        judging, timeout=ADMISSION_TIMEOUT, interval=0.5, what="admission judging by this test's grants"
    )


def hostile(ws: WorkspaceHarness, registry: Registry, outside: Path) -> dict[str, tuple[dict[str, Any], str]]:
    """Workspaces a tenant must not get without a grant, with the message each is refused with."""
    ns = ws.namespace
    foreign = "docker.io/library/busybox:latest"
    return {
        "tier3": ({"tier": 3}, tier_message(3, ns)),
        "tier4": ({"tier": 4}, tier_message(4, ns)),
        "host-dir": (
            {"workspace": {"hostPath": str(outside), "access": "read_write"}},
            host_path_message(str(outside), "read_write", ns),
        ),
        "foreign-image": ({"image": foreign}, image_message(foreign, ns, registry.prefix)),
    }


FLOOR = {
    "docker-socket": ("/run/docker.sock", "must not be or sit under"),
    "host-root": ("/", "must not end with '/'"),
    "roots-home": ("/root", "must not be or sit under"),
    "run": ("/run", "must not be or sit under"),
}


def test_hostile_workspaces_are_refused_at_apply_with_the_rule_and_how_to_grant_it(
    ws: WorkspaceHarness, admission: None, registry: Registry, tmp_path: Path
) -> None:
    ws.start_controller()  # it publishes the EffectiveWorkspacePolicy the admission policy reads
    wait_admission_active(ws, refuses={"tier": 3}, admits={"tier": 1})

    for name, (spec, message) in hostile(ws, registry, tmp_path).items():
        error = refused(ws, workspace_manifest(name, spec))
        assert "ValidatingAdmissionPolicy 'workspace-policy.molecule.ai'" in error, name
        assert message in error, (name, error)
    for name, (path, rule) in FLOOR.items():
        error = refused(
            ws, workspace_manifest(name, {"workspace": {"hostPath": path, "access": "read_write"}})
        )
        assert "spec.workspace.hostPath" in error, name
        assert rule in error, (name, error)

    assert ws.kubectl.get_json("workspaces")["items"] == []
    # What is allowed by default still is: tier 1 and 2, images under the registry prefix.
    ws.apply(workspace_manifest("tier1", {"tier": 1}))
    ws.apply(workspace_manifest("runtime-image", {"image": registry.image("langgraph")}))
    ws.wait_ready("tier1")
    ws.wait_ready("runtime-image")


def test_without_the_admission_policy_the_controller_refuses_the_same_workspaces_and_creates_nothing(
    ws: WorkspaceHarness, registry: Registry, tmp_path: Path
) -> None:
    proc = ws.start_controller()
    cases = hostile(ws, registry, tmp_path)
    for name, (spec, _) in cases.items():
        ws.apply(workspace_manifest(name, spec))

    for name, (_, message) in cases.items():
        stalled = ws.wait_stalled(name, "PolicyDenied")
        assert stalled["message"] == message
        obj = ws.get(name)
        ready = condition(obj, "Ready")
        assert ready is not None
        assert (ready["status"], ready["reason"]) == ("False", "PolicyDenied")
        assert ws.containers(name) == []
        warnings = [e for e in ws.events(name) if e.get("reason") == "PolicyDenied"]
        assert warnings
        assert warnings[0]["type"] == "Warning"
        assert warnings[0]["message"] == message
        metrics = ControllerMetrics.of(proc)
        assert metrics.workspace_gauge(DENIED_GAUGE, ws.namespace, name) == 1


def test_granted_workspaces_run_and_a_withdrawn_grant_stops_the_container_and_says_so(
    ws: WorkspaceHarness, admission: None, tmp_path: Path
) -> None:
    root = tmp_path / "team"
    (root / "ro").mkdir(parents=True)
    (root / "ro" / "notes.txt").write_text("from the host\n")
    (root / "rw").mkdir()
    policy = ws.grant(tiers=[3], hostPaths=[{"path": str(root), "access": "read_write"}])
    proc = ws.start_controller()
    wait_admission_active(ws, refuses={"tier": 4}, admits={"tier": 3})

    ws.apply(workspace_manifest("tier3", {"tier": 3}))
    ws.apply(workspace_manifest("ro", {"workspace": {"hostPath": str(root / "ro"), "access": "read_only"}}))
    ws.apply(workspace_manifest("rw", {"workspace": {"hostPath": str(root / "rw"), "access": "read_write"}}))

    # Tier 3 is privileged, which this test host refuses to start: the created container shows the grant.
    tier3 = wait_until(lambda: ws.containers("tier3"), timeout=60, what="the tier 3 container")[0]
    assert tier3.attrs["HostConfig"]["Privileged"] is True
    assert tier3.attrs["HostConfig"]["PidMode"] == "host"
    ws.wait_ready("ro")
    ws.wait_ready("rw")
    assert exec_sh(ws.container("ro"), "cat /workspace/notes.txt") == "from the host\n"
    assert ws.container("ro").exec_run(["/bin/sh", "-c", "echo x > /workspace/new"]).exit_code != 0
    exec_sh(ws.container("rw"), "echo written > /workspace/out.txt")
    assert (root / "rw" / "out.txt").read_text() == "written\n"

    status = wait_until(
        lambda: (ws.kubectl.get_json("workspacepolicy", policy).get("status") or {}).get("matchedNamespaces"),
        timeout=30,
        what="the policy's matched namespaces",
    )
    assert ws.namespace in status
    columns = ws.kubectl.run("get", "workspacepolicy", policy)
    assert "NAMESPACES" in columns.splitlines()[0]

    running = ws.container("rw")
    ws.withdraw(policy)
    message = host_path_message(str(root / "rw"), "read_write", ws.namespace)
    assert ws.wait_stalled("rw", "PolicyDenied")["message"] == message
    wait_until(lambda: (running.reload(), running.status)[1] == "exited", timeout=30, what="rw stopped")
    assert ws.containers("rw")[0].id == running.id  # stopped, not removed: its data stays
    assert "Stopped" in ws.event_reasons("rw")
    assert ControllerMetrics.of(proc).workspace_gauge(DENIED_GAUGE, ws.namespace, "rw") == 1
    # The Workspace can still be edited back into what is allowed, and deleted.
    ws.kubectl.run("label", "workspace", "rw", "still=editable")

    ws.grant(policy, tiers=[3], hostPaths=[{"path": str(root), "access": "read_write"}])
    back = ws.wait_for("rw", is_ready, "Ready again once granted again")
    assert stalled_reason(back) is None
    assert ws.container("rw").id == running.id


def test_the_shipped_sample_policy_is_accepted_by_the_apiserver(installed: Kubectl) -> None:
    sample = REPO / "deploy" / "samples" / "workspacepolicy.yaml"
    assert "created (server dry run)" in installed.run("apply", "--dry-run=server", "-f", str(sample))


def test_a_namespace_label_given_later_is_judged_at_once_at_apply(
    ws: WorkspaceHarness, admission: None
) -> None:
    team = f"team-{uuid.uuid4().hex[:6]}"
    ws.kubectl.apply(policy_manifest(team, {"molecule.ai/team": team}, tiers=[3]))
    ws.policies.append(team)
    ws.start_controller()
    wait_admission_active(ws, refuses={"tier": 3})

    error = refused(ws, workspace_manifest("later", {"tier": 3}))
    assert tier_message(3, ws.namespace) in error

    ws.kubectl.run("label", "namespace", ws.namespace, f"molecule.ai/team={team}")
    wait_until(
        lambda: ws.kubectl.run(
            "apply", "--dry-run=server", "-f", "-", stdin=workspace_manifest("later", {"tier": 3})
        ),
        timeout=30,
        what="the labelled namespace granted tier 3 at apply",
    )
    ws.apply(workspace_manifest("later", {"tier": 3}))
    wait_until(
        lambda: ws.containers("later"), timeout=60, what="the tier 3 container of the labelled namespace"
    )
