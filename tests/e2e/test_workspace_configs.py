"""What lands in /configs: files from ConfigMaps and inline (inline wins), line endings, the auth token.

The files are written into the config volume before the container starts, so the agent's first
instruction already finds them. The token is a secret: it reaches the agent as /configs/.auth_token
(mode 600) and nowhere else a user can read (describe, events, status, the controller's log).
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.workspaces import (
    WorkspaceHarness,
    agent_configs,
    config_map_manifest,
    exec_sh,
    fingerprint,
    secret_manifest,
    workspace_manifest,
)

pytestmark = pytest.mark.e2e


def _nanoseconds(timestamp: str) -> int:
    """'2026-01-02T03:04:05.123456789Z' or '2026-01-02 03:04:05.123456789 +0000' (UTC) as epoch ns."""
    text = timestamp.strip().replace("T", " ").removesuffix("Z").removesuffix(" +0000")
    whole, _, fraction = text.partition(".")
    seconds = datetime.strptime(whole, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    return int(seconds) * 1_000_000_000 + int((fraction or "0").ljust(9, "0")[:9])


def test_config_files_merge_configmap_and_inline_files_before_the_agent_starts(ws: WorkspaceHarness) -> None:
    """ConfigMap keys and inline files become files under /configs (nested paths too); an inline file
    overrides the ConfigMap's key of the same path; CRLF becomes LF in .sh, .py and .md files only.

    Everything, the token included, is in the config volume before the container starts: at the first
    Ready the agent serves the files, their inode change time precedes the container's start, and
    Docker never had to restart the agent.
    """
    ws.apply(
        config_map_manifest(
            "agent-files",
            {
                "config.yaml": "name: from-configmap\n",
                "run.sh": "#!/bin/sh\r\necho hi\r\n",
                "tools.py": "print('a')\r\nprint('b')\r\n",
                "data.txt": "keep\r\nthese\r\n",
                "shared.md": "from the configmap\r\n",
            },
        )
    )
    token = secrets.token_urlsafe(24)
    ws.apply(secret_manifest("agent-token", {"token": token}))
    ws.apply(
        workspace_manifest(
            "files",
            {
                "config": {
                    "fromConfigMaps": [{"name": "agent-files"}],
                    "files": [
                        {"path": "config.yaml", "content": "name: inline\nmodel: m\n"},
                        {"path": "prompts/system.md", "content": "line one\r\nline two\r\n"},
                        {"path": "shared.md", "content": "inline wins\r\n"},
                    ],
                },
                "authToken": {"secretRef": {"name": "agent-token", "key": "token"}},
            },
        )
    )
    ws.start_controller()
    obj = ws.wait_ready("files")
    files = agent_configs(obj["status"]["endpoint"])

    assert set(files) == {
        "config.yaml",
        "run.sh",
        "tools.py",
        "data.txt",
        "shared.md",
        "prompts/system.md",
        ".auth_token",
    }
    assert files["config.yaml"].content == b"name: inline\nmodel: m\n"
    assert files["shared.md"].content == b"inline wins\n"
    assert files["run.sh"].content == b"#!/bin/sh\necho hi\n"
    assert files["tools.py"].content == b"print('a')\nprint('b')\n"
    assert files["prompts/system.md"].content == b"line one\nline two\n"
    assert files["data.txt"].content == b"keep\r\nthese\r\n"  # not a script: bytes kept
    for path, seen in files.items():
        assert seen.size == len(seen.content), path
        assert seen.mode == ("600" if path == ".auth_token" else "644"), path
    assert fingerprint(files[".auth_token"].content.decode()) == fingerprint(token)

    container = ws.container("files")
    assert container.attrs["RestartCount"] == 0
    assert obj["status"]["container"]["restartCount"] == 0
    started = _nanoseconds(container.attrs["State"]["StartedAt"])
    changed = exec_sh(
        container, "stat -c '%z' /configs/config.yaml /configs/.auth_token /configs/prompts/system.md"
    )
    for line in changed.splitlines():
        assert _nanoseconds(line) < started, f"a config file was written after the container started: {line}"


def _leaks(texts: dict[str, str], token: str) -> list[str]:
    """Where ``token`` appears (by place name only: the value is never shown)."""
    return [place for place, text in texts.items() if token in text]


def _visible_places(ws: WorkspaceHarness, name: str) -> dict[str, str]:
    obj: dict[str, Any] = ws.get(name)
    container = ws.container(name)
    return {
        "kubectl describe": ws.describe(name),
        "events": ws.kubectl.run("get", "events", "-o", "yaml"),
        "workspace object": ws.kubectl.run("get", "workspace", name, "-o", "yaml"),
        "status": str(obj.get("status")),
        "controller log": ws.controller_logs(),
        "container env and labels": str(container.attrs["Config"].get("Env"))
        + str(container.attrs["Config"].get("Labels")),
    }


def test_auth_token_from_a_secret_or_generated_reaches_only_the_agent(ws: WorkspaceHarness) -> None:
    """spec.authToken's Secret, or (generate: true) a Secret <name>-auth-token the controller creates and
    owns, is written to /configs/.auth_token with mode 600; unset, no token is invented. The token never
    shows in describe, events, the Workspace's status, the container's env or labels, or the log."""
    given = secrets.token_urlsafe(24)
    ws.apply(secret_manifest("given-token", {"bearer": given}))
    ws.apply(
        workspace_manifest("given", {"authToken": {"secretRef": {"name": "given-token", "key": "bearer"}}})
    )
    ws.apply(workspace_manifest("generated", {"authToken": {"generate": True}}))
    ws.apply(workspace_manifest("none"))
    ws.start_controller()

    given_obj = ws.wait_ready("given")
    given_file = agent_configs(given_obj["status"]["endpoint"])[".auth_token"]
    assert given_file.mode == "600"
    assert fingerprint(given_file.content.decode()) == fingerprint(given)
    assert given_obj["status"]["authTokenSecretName"] == "given-token"
    assert not ws.kubectl.run("get", "secrets", "-o", "name").count("given-auth-token")

    generated_obj = ws.wait_ready("generated")
    assert generated_obj["status"]["authTokenSecretName"] == "generated-auth-token"
    secret = ws.kubectl.get_json("secret", "generated-auth-token")
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "workspace-controller"
    owner = secret["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "Workspace",
        "generated",
        generated_obj["metadata"]["uid"],
    )
    generated = base64.b64decode(secret["data"]["token"]).decode()
    assert len(generated) >= 32
    generated_file = agent_configs(generated_obj["status"]["endpoint"])[".auth_token"]
    assert generated_file.mode == "600"
    assert fingerprint(generated_file.content.decode()) == fingerprint(generated)

    none_obj = ws.wait_ready("none")
    assert ".auth_token" not in agent_configs(none_obj["status"]["endpoint"])
    assert "authTokenSecretName" not in none_obj["status"]
    assert "none-auth-token" not in ws.kubectl.run("get", "secrets", "-o", "name")

    for name, token in (("given", given), ("generated", generated)):
        leaks = _leaks(_visible_places(ws, name), token)
        assert leaks == [], f"the {name} token is visible in: {leaks}"
