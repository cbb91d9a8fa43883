"""deploy/argocd/health-workspace.lua run by a real Lua 5.1 (Argo CD runs its health scripts with Lua 5.1
semantics, through gopher-lua): the status Argo CD shows for each shape of a Workspace's status."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "argocd" / "health-workspace.lua"
LUA = shutil.which("lua5.1") or "lua5.1"  # Debian's lua5.1 (.ci/run installs it)


def lua_literal(value: Any) -> str:
    """A Python value (from a Workspace's JSON) as a Lua 5.1 table constructor; None is nil."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = "".join(ch if ch.isalnum() or ch in " .,:/-_()=<>'" else f"\\{ord(ch)}" for ch in value)
        return f'"{escaped}"'
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_literal(k)}] = {lua_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def health(obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) as Argo CD would get them from the script for `obj`."""
    program = (
        f"obj = {lua_literal(obj)}\n"
        f"local function check()\n{SCRIPT.read_text()}\nend\n"
        "local hs = check()\n"
        'io.write(hs.status, "\\n", hs.message or "")\n'
    )
    result = subprocess.run([LUA, "-"], input=program, capture_output=True, text=True, timeout=10, check=True)
    status, _, message = result.stdout.partition("\n")
    return status, message


def workspace(generation: int = 2, status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "w", "generation": generation}, "spec": dict(spec)}
    if status is not None:
        obj["status"] = status
    return obj


def cond(type_: str, status: str, reason: str, message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message or f"{type_} {reason}"}


READY = cond("Ready", "True", "ContainerRunning", "ws-0b6c is running")
SYNCED = cond("Synced", "True", "ReconcileSuccess")


@pytest.mark.parametrize(
    ("obj", "expected_status", "in_message"),
    [
        pytest.param(workspace(), "Progressing", "Waiting for the controller", id="no-status"),
        pytest.param(workspace(status={}), "Progressing", "Waiting for the controller", id="empty-status"),
        pytest.param(
            workspace(status={"observedGeneration": 1, "conditions": [READY, SYNCED]}),
            "Progressing",
            "observe generation 2",
            id="older-generation",
        ),
        pytest.param(
            workspace(status={"observedGeneration": 2, "conditions": [READY, SYNCED]}),
            "Healthy",
            "ws-0b6c is running",
            id="healthy",
        ),
        pytest.param(
            workspace(
                status={
                    "observedGeneration": 2,
                    "conditions": [
                        READY,
                        SYNCED,
                        cond("Reconciling", "True", "RollingOut", "waiting for ws-0b6c-next to become Ready"),
                    ],
                }
            ),
            "Progressing",
            "RollingOut: waiting for ws-0b6c-next",
            id="start-first-rollout",
        ),
        pytest.param(
            workspace(
                status={
                    "observedGeneration": 2,
                    "conditions": [
                        cond(
                            "Ready", "False", "ContainerStarting", "ws-0b6c is running; health check pending"
                        ),
                        SYNCED,
                    ],
                }
            ),
            "Progressing",
            "ContainerStarting",
            id="starting",
        ),
        pytest.param(
            workspace(
                status={
                    "observedGeneration": 2,
                    "conditions": [
                        cond("Ready", "False", "ContainerMissing"),
                        SYNCED,
                        cond("Stalled", "True", "ImageNotFound", "image nope:1 not found"),
                    ],
                }
            ),
            "Degraded",
            "ImageNotFound: image nope:1 not found",
            id="stalled",
        ),
        pytest.param(
            workspace(
                status={
                    "observedGeneration": 2,
                    "conditions": [READY, cond("Synced", "False", "RolloutFailed", "the rollout failed")],
                }
            ),
            "Degraded",
            "RolloutFailed",
            id="rollout-failed",
        ),
        pytest.param(
            workspace(
                status={
                    "observedGeneration": 2,
                    "conditions": [cond("Ready", "False", "Suspended", "spec.suspend is true"), SYNCED],
                },
                suspend=True,
            ),
            "Suspended",
            "spec.suspend is true",
            id="suspended",
        ),
        pytest.param(
            workspace(
                status={
                    "observedGeneration": 2,
                    "conditions": [
                        cond("Ready", "False", "Expired", "shut down at 2026-12-01T12:00:00Z"),
                        SYNCED,
                    ],
                },
            ),
            "Suspended",
            "Expired: shut down at",
            id="expired",
        ),
        pytest.param(
            workspace(
                status={
                    "observedGeneration": 2,
                    "conditions": [cond("Ready", "False", "Hibernated", "hibernated at 12:00"), SYNCED],
                },
            ),
            "Suspended",
            "Hibernated: hibernated at",
            id="hibernated",
        ),
    ],
)
def test_argocd_health(obj: dict[str, Any], expected_status: str, in_message: str) -> None:
    status, message = health(obj)
    assert status == expected_status
    assert in_message in message


def test_messages_with_quotes_and_newlines_reach_argocd_unharmed() -> None:
    tricky = 'a "quoted" name\nand a second line \\ with a backslash'
    obj = workspace(
        status={"observedGeneration": 2, "conditions": [cond("Stalled", "True", "InvalidSpec", tricky)]}
    )
    assert health(obj) == ("Degraded", f"InvalidSpec: {tricky}")
