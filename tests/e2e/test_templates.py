"""WorkspaceTemplates against the real kube-apiserver and Docker: a Workspace gets what its template sets,
a template change rolls out to it, a pinned field is refused at `kubectl apply` (deploy/admission/'s
policy) and, without that policy, by the controller with the same message; a missing template stalls
the Workspace until it exists; a template never grants what the namespace's policy does not."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from controller.core.policy import tier_message
from controller.core.templates import override_message
from tests.support.kubectl import Kubectl, KubectlError
from tests.support.polling import wait_until
from tests.support.stack import REPO
from tests.support.workspaces import (
    WorkspaceHarness,
    agent_env,
    condition,
    stalled_reason,
    workspace_manifest,
)

pytestmark = pytest.mark.e2e

ADMISSION = REPO / "deploy" / "admission" / "workspace-templates.yaml"
ADMISSION_TIMEOUT = 90.0


def template_manifest(name: str, template: dict[str, Any], allow: list[str]) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "molecule.ai/v1alpha1",
            "kind": "WorkspaceTemplate",
            "metadata": {"name": name},
            "spec": {"template": template, "allowOverrides": allow},
        }
    )


@pytest.fixture
def admission(installed: Kubectl, ws: WorkspaceHarness) -> Iterator[None]:
    """deploy/'s template admission policy, installed as shipped, and removed after the test (the
    session's other tests run without it)."""
    installed.run("apply", "-f", str(ADMISSION))
    yield
    installed.run("delete", "--ignore-not-found", "-f", str(ADMISSION))
    # The apiserver drops a deleted policy from its admission cache a moment later: the next test must
    # not meet it (a dry run of what it refused is admitted again).
    ws.apply(template_manifest("lifted-probe", {"tier": 1}, allow=[]))
    probe = workspace_manifest("probe", {"templateRef": {"name": "lifted-probe"}, "tier": 2})

    def lifted() -> bool:
        ws.kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=probe)
        return True

    wait_until(lifted, timeout=ADMISSION_TIMEOUT, what="the template admission policy no longer enforced")


def test_a_workspace_gets_its_templates_fields_and_a_template_change_rolls_out(ws: WorkspaceHarness) -> None:
    ws.start_controller()
    ws.apply(
        template_manifest("agent", {"env": [{"name": "MODEL", "value": "opus"}]}, allow=["env", "config"])
    )
    ws.apply(
        workspace_manifest(
            "alice", {"templateRef": {"name": "agent"}, "env": [{"name": "OWNER", "value": "alice"}]}
        )
    )
    ready = ws.wait_ready("alice")
    env = agent_env(ready["status"]["endpoint"])
    assert (env["MODEL"], env["OWNER"]) == ("opus", "alice")
    assert ready["status"]["template"] == {"name": "agent", "generation": 1}
    wide = ws.kubectl.run("get", "workspace", "alice", "-o", "wide")
    assert "TEMPLATE" in wide.splitlines()[0]
    assert "agent" in wide.splitlines()[1]
    first = ws.container("alice").id

    ws.kubectl.run(
        "patch",
        "workspacetemplate",
        "agent",
        "--type=merge",
        "-p",
        '{"spec": {"template": {"env": [{"name": "MODEL", "value": "sonnet"}]}}}',
    )

    def rolled_out() -> dict[str, Any] | None:
        obj = ws.get("alice")
        status = obj.get("status") or {}
        if (status.get("template") or {}).get("generation") != 2 or condition(obj, "Ready") is None:
            return None
        ready_now = (condition(obj, "Ready") or {}).get("status") == "True"
        return obj if ready_now and ws.container("alice").id != first else None

    after = wait_until(rolled_out, timeout=120, what="the template change rolled out")
    env = agent_env(after["status"]["endpoint"])
    assert (env["MODEL"], env["OWNER"]) == ("sonnet", "alice")


def test_a_pinned_field_is_refused_at_apply_with_the_controllers_message(
    ws: WorkspaceHarness, admission: None
) -> None:
    ws.apply(template_manifest("pinned", {"tier": 1, "runtime": "langgraph"}, allow=["env", "config"]))
    manifest = workspace_manifest("bob", {"templateRef": {"name": "pinned"}, "tier": 2})
    expected = override_message(("tier",), "pinned", ("env", "config"))

    def refusal() -> str | None:
        try:
            ws.kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=manifest)
        except KubectlError as exc:
            return str(exc) if expected in str(exc) else None
        return None

    wait_until(refusal, timeout=ADMISSION_TIMEOUT, interval=0.5, what="admission refusing the pinned tier")
    with pytest.raises(KubectlError, match="pinned by WorkspaceTemplate pinned"):
        ws.apply(manifest)
    # What the template lets a Workspace set is admitted, and a Workspace of another template is not judged
    # by this one.
    ws.kubectl.run(
        "apply",
        "--dry-run=server",
        "-f",
        "-",
        stdin=workspace_manifest("carol", {"templateRef": {"name": "pinned"}}),
    )
    ws.apply(
        template_manifest("open", {"env": [{"name": "A", "value": "1"}]}, allow=["env", "config", "tier"])
    )
    ws.kubectl.run(
        "apply",
        "--dry-run=server",
        "-f",
        "-",
        stdin=workspace_manifest(
            f"dave-{uuid.uuid4().hex[:4]}", {"templateRef": {"name": "open"}, "tier": 2}
        ),
    )


def test_without_admission_the_controller_refuses_a_pinned_field_and_creates_nothing(
    ws: WorkspaceHarness,
) -> None:
    ws.start_controller()
    ws.apply(template_manifest("pinned", {"tier": 1}, allow=["config"]))
    ws.apply(workspace_manifest("eve", {"templateRef": {"name": "pinned"}, "tier": 2}))
    stalled = ws.wait_stalled("eve", "TemplateOverrideDenied")
    assert stalled["message"] == override_message(("tier",), "pinned", ("config",))
    assert ws.containers("eve") == []
    # Taken back, the Workspace runs with the template's tier.
    ws.kubectl.run(
        "patch", "workspace", "eve", "--type=json", "-p", '[{"op": "remove", "path": "/spec/tier"}]'
    )
    ready = ws.wait_ready("eve")
    assert agent_env(ready["status"]["endpoint"])["TIER"] == "1"


def test_a_missing_template_stalls_the_workspace_until_it_is_created(ws: WorkspaceHarness) -> None:
    ws.start_controller()
    ws.apply(workspace_manifest("frank", {"templateRef": {"name": "later"}}))
    stalled = ws.wait_stalled("frank", "TemplateNotFound")
    assert stalled["message"] == f"WorkspaceTemplate later not found in namespace {ws.namespace}"
    assert ws.containers("frank") == []
    ws.apply(template_manifest("later", {"env": [{"name": "MODEL", "value": "haiku"}]}, allow=["config"]))
    ready = ws.wait_ready("frank")
    assert agent_env(ready["status"]["endpoint"])["MODEL"] == "haiku"


def test_a_template_never_grants_what_the_namespace_policy_does_not(ws: WorkspaceHarness) -> None:
    ws.start_controller()
    ws.apply(template_manifest("privileged", {"tier": 3}, allow=["config"]))
    ws.apply(workspace_manifest("grace", {"templateRef": {"name": "privileged"}}))
    stalled = ws.wait_stalled("grace", "PolicyDenied")
    assert stalled["message"] == tier_message(3, ws.namespace)
    assert stalled_reason(ws.get("grace")) == "PolicyDenied"
    assert ws.containers("grace") == []
