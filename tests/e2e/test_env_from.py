"""spec.envFrom through the real stack: a Secret's and a ConfigMap's keys reach the running agent (the
platform's secrets injected in bulk), env wins over them, a key that makes no variable name is left out
with a Warning that quotes no value, and a missing required Secret stalls until it is created."""

from __future__ import annotations

import secrets

import pytest

from tests.support.kubectl import KubectlError
from tests.support.metrics import ControllerMetrics
from tests.support.polling import wait_until
from tests.support.workspaces import (
    WorkspaceHarness,
    agent_env,
    config_map_manifest,
    fingerprint,
    secret_manifest,
    workspace_manifest,
)

pytestmark = pytest.mark.e2e


def test_secret_and_config_map_keys_become_the_agents_variables(ws: WorkspaceHarness) -> None:
    api_key = f"sk-{secrets.token_hex(12)}"
    hidden = f"hidden-{secrets.token_hex(8)}"
    ws.apply(
        secret_manifest("platform-secrets", {"OPENAI_API_KEY": api_key, "MODEL": "m1", "bad-key": hidden})
    )
    ws.apply(config_map_manifest("platform-settings", {"LEVEL": "debug", "REGION": "eu"}))
    ws.start_controller()
    ws.apply(
        workspace_manifest(
            "bulk",
            {
                "runtime": "langgraph",
                "envFrom": [
                    {"secretRef": {"name": "platform-secrets"}},
                    {"prefix": "CFG_", "configMapRef": {"name": "platform-settings"}},
                    {"configMapRef": {"name": "not-there", "optional": True}},
                ],
                "env": [{"name": "MODEL", "value": "explicit"}],
            },
        )
    )
    obj = ws.wait_ready("bulk")
    seen = agent_env(obj["status"]["endpoint"])
    assert fingerprint(seen["OPENAI_API_KEY"]) == fingerprint(api_key)
    assert (seen["CFG_LEVEL"], seen["CFG_REGION"], seen["MODEL"]) == ("debug", "eu", "explicit")
    assert "bad-key" not in seen
    warning = ws.wait_event("bulk", "InvalidEnvFromKeys")
    assert "'bad-key' (Secret platform-secrets): not a variable name" in warning[0]["message"]
    for text in (ws.controller_logs(), ws.kubectl.run("get", "events", "-o", "yaml")):
        assert hidden not in text
        assert api_key not in text


def test_a_missing_required_source_stalls_until_it_is_created(ws: WorkspaceHarness) -> None:
    # No resync within the test: only the Secret watch can tell the controller that it now exists.
    proc = ws.start_controller(WC_RESYNC_SECONDS="3600")
    ws.apply(
        workspace_manifest("waiting", {"runtime": "langgraph", "envFrom": [{"secretRef": {"name": "later"}}]})
    )
    stalled = ws.wait_stalled("waiting", "SecretNotFound")
    assert "later (spec.envFrom[0]) not found" in stalled["message"]
    assert ws.containers("waiting") == []
    ws.apply(secret_manifest("later", {"TOKEN": "t-1"}))
    obj = ws.wait_ready("waiting")
    assert agent_env(obj["status"]["endpoint"])["TOKEN"] == "t-1"

    # A rotated value reaches the agent the same way, read from what the watch keeps, not by a GET.
    metrics = ControllerMetrics.of(proc)
    gets = metrics.value("workspace_controller_referenced_object_reads_total", kind="secrets", source="api")
    first = ws.containers("waiting")[0].id
    ws.apply(secret_manifest("later", {"TOKEN": "t-2"}))

    def rotated() -> bool:
        found = ws.containers("waiting")
        return bool(found) and found[0].id != first

    wait_until(rotated, timeout=120, interval=0.5, what="the container replaced for the new value")
    obj = ws.wait_ready("waiting")
    assert agent_env(obj["status"]["endpoint"])["TOKEN"] == "t-2"
    after = metrics.value("workspace_controller_referenced_object_reads_total", kind="secrets", source="api")
    assert after == gets, "the rotated Secret was read from the watch, not fetched again"
    cached = metrics.value(
        "workspace_controller_referenced_object_reads_total", kind="secrets", source="cache"
    )
    assert cached > 0


def test_a_source_naming_two_objects_is_refused_at_apply_with_the_reason(ws: WorkspaceHarness) -> None:
    manifest = workspace_manifest(
        "both",
        {"runtime": "langgraph", "envFrom": [{"secretRef": {"name": "a"}, "configMapRef": {"name": "b"}}]},
    )
    with pytest.raises(KubectlError, match="envFrom must set exactly one of secretRef or configMapRef"):
        ws.apply(manifest)
    with pytest.raises(KubectlError, match=r"spec.envFrom\[0\].prefix"):
        ws.apply(
            workspace_manifest(
                "dash", {"runtime": "langgraph", "envFrom": [{"prefix": "A-", "secretRef": {"name": "a"}}]}
            )
        )
