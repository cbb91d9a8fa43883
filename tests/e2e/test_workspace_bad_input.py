"""Bad input: refused by the apiserver at apply time (schema and CEL) with a message that says what is
wrong, or, when only the controller can tell, reported as Stalled with a reason and a message, without
disturbing the controller or any other Workspace, and healing once the missing piece appears.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.support.kubectl import Kubectl, KubectlError
from tests.support.stack import Registry
from tests.support.workspaces import (
    WorkspaceHarness,
    agent_env,
    condition,
    fingerprint,
    is_ready,
    secret_manifest,
    workspace_manifest,
)

pytestmark = pytest.mark.e2e


REJECTED: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "read-only-without-host-path",
        {"workspace": {"access": "read_only"}},
        ["spec.workspace.hostPath", "workspace.access read_only requires workspace.hostPath"],
    ),
    (
        "host-path-under-etc",
        {"workspace": {"hostPath": "/etc/agent", "access": "read_write"}},
        ["spec.workspace.hostPath", "workspace.hostPath must not be or sit under /etc"],
    ),
    (
        "reserved-env-name",
        {"env": [{"name": "PLATFORM_URL", "value": "http://evil.test"}]},
        ["spec.env[0].name", "env name PLATFORM_URL is set by the controller and cannot be overridden"],
    ),
    (
        "nul-in-env-value",
        {"env": [{"name": "GREETING", "value": "hi\x00there"}]},
        ["spec.env[0].value", "env value must not contain a NUL byte"],
    ),
    ("tier-5", {"tier": 5}, ["spec.tier", "should be less than or equal to 4"]),
    ("bad-runtime", {"runtime": "Lang_Graph"}, ["spec.runtime", "should match"]),
]


@pytest.mark.parametrize(("case", "spec", "expected"), REJECTED, ids=[case for case, _, _ in REJECTED])
def test_the_apiserver_rejects_invalid_specs_with_a_clear_message(
    installed: Kubectl, namespace: str, case: str, spec: dict[str, Any], expected: list[str]
) -> None:
    """No controller is needed: the CRD's schema and CEL rules refuse the object, naming field and rule."""
    kubectl = installed.in_namespace(namespace)
    with pytest.raises(KubectlError) as refused:
        kubectl.apply(workspace_manifest(case, spec))
    message = str(refused.value)
    assert "is invalid" in message
    for text in expected:
        assert text in message
    assert kubectl.run("get", "workspaces", "-o", "name").strip() == ""


def test_unusable_workspaces_stall_with_a_reason_while_a_healthy_one_stays_ready(
    ws: WorkspaceHarness, registry: Registry
) -> None:
    """UnknownRuntime, NoConfigSource, ImageNotFound (naming the image and the registry it was looked
    for in) and SecretNotFound are each reported as Stalled (Ready=False, Synced=False) with a Warning
    event; a healthy Workspace on the same controller keeps its container and stays Ready, and the
    controller keeps running. Creating the missing Secret heals that Workspace to Ready."""
    missing_tag = f"missing-{secrets.token_hex(4)}"
    missing_image = registry.image("langgraph", missing_tag)
    # The controller below looks for runtime images elsewhere: the session registry needs a grant.
    ws.grant(images=[{"prefix": f"{registry.address}/"}])
    ws.apply(workspace_manifest("healthy", {"image": registry.image("langgraph")}))
    ws.apply(workspace_manifest("unknown-runtime", {"runtime": "nonexistent"}))
    ws.apply(workspace_manifest("no-config", {"image": registry.image("langgraph"), "config": {}}))
    ws.apply(workspace_manifest("missing-image", {"image": missing_image}))
    ws.apply(
        workspace_manifest(
            "missing-secret",
            {
                "image": registry.image("langgraph"),
                "env": [
                    {
                        "name": "API_KEY",
                        "valueFrom": {"secretKeyRef": {"name": "late-creds", "key": "api-key"}},
                    }
                ],
            },
        )
    )
    # Runtime images would come from another registry: an image named in spec.image is looked for where
    # its reference says, and that is the registry a message must name.
    controller = ws.start_controller(
        MOLECULE_IMAGE_REGISTRY="registry.invalid/molecule-ai", WC_RESYNC_SECONDS="1"
    )
    healthy = ws.wait_ready("healthy")
    healthy_id = healthy["status"]["container"]["id"]

    unknown = ws.wait_stalled("unknown-runtime", "UnknownRuntime")
    assert "'nonexistent' is not a known runtime" in unknown["message"]
    assert "spec.image" in unknown["message"]

    no_config = ws.wait_stalled("no-config", "NoConfigSource")
    assert "config.yaml" in no_config["message"]

    not_found = ws.wait_stalled("missing-image", "ImageNotFound")
    assert missing_image in not_found["message"]
    assert f"registry {registry.address}" in not_found["message"]
    assert "registry.invalid" not in not_found["message"]

    no_secret = ws.wait_stalled("missing-secret", "SecretNotFound")
    assert f"Secret {ws.namespace}/late-creds" in no_secret["message"]
    assert "spec.env API_KEY" in no_secret["message"]

    for name, reason in (
        ("unknown-runtime", "UnknownRuntime"),
        ("no-config", "NoConfigSource"),
        ("missing-image", "ImageNotFound"),
        ("missing-secret", "SecretNotFound"),
    ):
        obj = ws.get(name)
        ready, synced = condition(obj, "Ready"), condition(obj, "Synced")
        assert ready is not None
        assert (ready["status"], ready["reason"]) == ("False", reason)
        assert synced is not None
        assert synced["status"] == "False"
        assert obj["status"]["phase"] == "Failed"
        assert ws.containers(name) == []
        warnings = ws.wait_event(name, reason)
        assert warnings[0]["type"] == "Warning"

    # Stalled is reported once, not on every pass: two more reconciles (and resyncs every second) later,
    # each still has exactly one Warning event of its reason.
    for attempt in range(2):
        ws.sync("missing-image", f"again-{attempt}")
    for name, reason in (("missing-image", "ImageNotFound"), ("unknown-runtime", "UnknownRuntime")):
        assert ws.event_reasons(name).count(reason) == 1, f"{name}: {reason} posted more than once"

    api_key = secrets.token_urlsafe(16)
    ws.apply(secret_manifest("late-creds", {"api-key": api_key}))
    healed = ws.wait_for("missing-secret", is_ready, "Ready once the Secret exists")
    assert condition(healed, "Stalled") is None
    assert fingerprint(agent_env(healed["status"]["endpoint"])["API_KEY"]) == fingerprint(api_key)

    assert controller.running
    still = ws.get("healthy")
    assert is_ready(still)
    assert still["status"]["container"]["id"] == healthy_id
    assert ws.container("healthy").id == healthy_id
    for name in ("unknown-runtime", "no-config", "missing-image"):
        assert condition(ws.get(name), "Stalled") is not None, f"{name} healed by itself"
