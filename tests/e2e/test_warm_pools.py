"""Warm pools against the real kube-apiserver and Docker: a WorkspacePool of 5 keeps 5 agents up; 5
Workspaces of its template are bound to them (the very containers, their identity and token applied),
each claim -> Ready printed beside a cold create made in the same run; the pool refills; a Workspace
that overrides the template is made cold; deleting a bound Workspace removes its container and volumes;
`kubectl scale` resizes the pool."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
import yaml
from docker.models.containers import Container

from controller.core import labels
from controller.core.naming import auth_token_secret_name
from controller.core.pools import SLOT_ANNOTATION
from tests.support.polling import wait_until
from tests.support.watch import ready_at, watching
from tests.support.workspaces import (
    WorkspaceHarness,
    agent_configs,
    agent_env,
    default_config,
    fingerprint,
)

pytestmark = pytest.mark.e2e

API = "molecule.ai/v1alpha1"
POOL_TIMEOUT = 180.0


def template(name: str) -> str:
    spec = {
        "template": {
            "env": [{"name": "MODEL", "value": "opus"}],
            "config": default_config(name),
            "authToken": {"generate": True},
        },
        "allowOverrides": ["env"],
    }
    return yaml.safe_dump(
        {"apiVersion": API, "kind": "WorkspaceTemplate", "metadata": {"name": name}, "spec": spec}
    )


def pool(name: str, template_name: str, replicas: int) -> str:
    spec = {"templateRef": {"name": template_name}, "replicas": replicas}
    return yaml.safe_dump(
        {"apiVersion": API, "kind": "WorkspacePool", "metadata": {"name": name}, "spec": spec}
    )


def workspace(name: str, spec: dict[str, Any]) -> str:
    return yaml.safe_dump({"apiVersion": API, "kind": "Workspace", "metadata": {"name": name}, "spec": spec})


def warm(ws: WorkspaceHarness) -> dict[str, Container]:
    """The pool's unbound slots: name -> container."""
    found = ws.docker.containers.list(all=True, filters={"label": [f"{labels.INSTANCE_LABEL}={ws.instance}"]})
    return {c.name: c for c in found if labels.SLOT_LABEL in c.labels and c.name.endswith("-warm")}


def pool_status(ws: WorkspaceHarness, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(ws.kubectl.run("get", "workspacepool", name, "-o", "yaml"))
    return obj.get("status") or {}


def wait_pool_ready(ws: WorkspaceHarness, name: str, replicas: int) -> dict[str, Container]:
    def full() -> dict[str, Container] | None:
        slots = warm(ws)
        ready = pool_status(ws, name).get("readyReplicas")
        return slots if ready == replicas and len(slots) == replicas else None

    found: dict[str, Container] = wait_until(
        full, timeout=POOL_TIMEOUT, what=f"pool {name} with {replicas} ready"
    )
    return found


def ready_times(ws: WorkspaceHarness, manifests: dict[str, str]) -> dict[str, float]:
    """Applies each manifest; seconds from each one's `kubectl apply` starting (its own time, about
    0.2 s, included) until a watch of the namespace brings it Ready."""
    with watching(ws.kubectl, None) as watch:
        applied: dict[str, float] = {}
        for name, manifest in manifests.items():
            applied[name] = time.time()  # a claim can be Ready before kubectl returns
            ws.apply(manifest)
        return ready_at(watch, applied, timeout=POOL_TIMEOUT)


def test_a_pool_of_five_serves_five_workspaces_and_refills(ws: WorkspaceHarness) -> None:
    ws.start_controller()
    ws.apply(template("agent"))
    ws.apply(pool("warm", "agent", 5))
    slots = wait_pool_ready(ws, "warm", 5)
    ids = {c.id for c in slots.values()}
    wide = ws.kubectl.run("get", "workspacepools", "-o", "wide")
    assert "warm" in wide
    assert "agent" in wide

    names = [f"agent-{i}" for i in range(5)]
    warm_times = ready_times(
        ws, {name: workspace(name, {"templateRef": {"name": "agent"}}) for name in names}
    )

    # A cold create in the same run: an override of the template makes another container.
    override = {"templateRef": {"name": "agent"}, "env": [{"name": "OWNER", "value": "me"}]}
    cold = ready_times(ws, {"cold": workspace("cold", override)})["cold"]
    for name in names:
        print(f"claim -> Ready {name}: {warm_times[name]:.2f}s (cold create: {cold:.2f}s)")
    slowest = max(warm_times.values())
    print(f"slowest claim -> Ready {slowest:.2f}s vs cold {cold:.2f}s: {slowest / cold:.2f}x")
    assert ws.container("cold").id not in ids

    for name in names:
        obj = ws.get(name)
        slot = obj["metadata"]["annotations"][SLOT_ANNOTATION]
        assert obj["status"]["workspaceID"] == slot
        container = [
            c for c in ws.docker.containers.list(all=True) if c.labels.get(labels.SLOT_LABEL) == slot
        ]
        assert len(container) == 1
        assert container[0].id in ids, "bound to a warm container, not a new one"
        assert container[0].name == f"ws-{slot[:12]}"
        endpoint = obj["status"]["endpoint"]
        env = agent_env(endpoint)
        assert env["WORKSPACE_ID"] == slot
        assert env["MODEL"] == "opus"
        token = agent_configs(endpoint)[".auth_token"]
        secret = yaml.safe_load(ws.kubectl.run("get", "secret", auth_token_secret_name(name), "-o", "yaml"))
        expected = base64.b64decode(next(iter(secret["data"].values()))).decode()
        assert fingerprint(token.content.decode()) == fingerprint(expected)
        assert "Claimed" in ws.event_reasons(name)

    # Refilled: five new warm agents, none of them one that was handed out.
    refilled = wait_pool_ready(ws, "warm", 5)
    assert not ({c.id for c in refilled.values()} & ids)
    assert pool_status(ws, "warm")["claimed"] >= 5

    # A bound Workspace deleted: its container and volumes go (its uid label is the slot's).
    gone = ws.get(names[0])["status"]["workspaceID"]
    ws.kubectl.run("delete", "workspace", names[0], "--wait=true", "--timeout=120s")
    assert not [c for c in ws.docker.containers.list(all=True) if c.labels.get(labels.SLOT_LABEL) == gone]
    assert not ws.docker.volumes.list(filters={"label": [f"{labels.SLOT_LABEL}={gone}"]})

    # The annotation written by hand binds nothing: no objects are made under an ID the controller did
    # not give it (choosing one's workspace ID is the platform's, under a grant).
    forged = "11111111-2222-4333-8444-555555555555"
    ws.apply(
        workspace("squatter", {"templateRef": {"name": "agent"}}).replace(
            "metadata:\n", f"metadata:\n  annotations:\n    {SLOT_ANNOTATION}: {forged}\n", 1
        )
    )
    stalled = ws.wait_stalled("squatter", "SlotNotBound")
    assert forged in stalled["message"]
    assert not [c for c in ws.docker.containers.list(all=True) if forged[:12] in c.name]
    ws.kubectl.run("annotate", "workspace", "squatter", f"{SLOT_ANNOTATION}-")
    ws.wait_ready("squatter")

    # kubectl scale resizes the pool (the scale subresource).
    ws.kubectl.run("scale", "workspacepool", "warm", "--replicas=2")
    wait_pool_ready(ws, "warm", 2)
