"""The real stack the integration tests run against, started through the project's hack/ scripts."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCKER_SH = ROOT / "hack" / "stack" / "docker.sh"
REGISTRY_SH = ROOT / "hack" / "stack" / "registry.sh"
BUILD_SH = ROOT / "hack" / "test-image" / "build.sh"
IMAGE_PREFIX = "molecule-ai/workspace-template"
RUNTIMES = (
    "autogen",
    "claude-code",
    "codex",
    "crewai",
    "deepagents",
    "gemini-cli",
    "hermes",
    "langgraph",
    "openclaw",
)
SCOPE_LABEL = "workspace-controller.test/scope"


@dataclass(frozen=True)
class Registries:
    plain: str
    """host:port of a registry anyone may pull from."""
    auth: str
    """host:port of a registry that demands `username`/`password`."""
    username: str
    password: str

    def ref(self, registry: str, runtime: str, tag: str = "latest") -> str:
        return f"{registry}/{IMAGE_PREFIX}-{runtime}:{tag}"


@dataclass(frozen=True)
class Scope:
    """Names and labels unique to one test; everything named or labelled so is removed afterwards."""

    prefix: str
    labels: dict[str, str] = field(default_factory=dict)

    def name(self, suffix: str) -> str:
        return f"{self.prefix}{suffix}"


def start_registry(name: str, env: dict[str, str], started: list[str], creds: str | None = None) -> str:
    last_error = ""
    for _ in range(3):  # a free port can be taken between picking and binding it
        args = ["bash", str(REGISTRY_SH), "start", name, str(free_port())] + ([creds] if creds else [])
        result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            started.append(name)
            return result.stdout.strip().splitlines()[-1]
        last_error = result.stderr
    raise RuntimeError(f"registry {name} did not start: {last_error}")


def push_test_image(registry: str, env: dict[str, str]) -> None:
    subprocess.run(["bash", str(BUILD_SH), registry], env=env, check=True, capture_output=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def remove_everything_named(api: Any, prefix: str) -> None:
    # Docker's name filters match substrings: filter, then check the prefix exactly.
    for container in api.containers(all=True, filters={"name": prefix}):
        if any(name.lstrip("/").startswith(prefix) for name in container.get("Names") or []):
            api.remove_container(container["Id"], v=True, force=True)
    for container in api.containers(all=True, filters={"label": f"{SCOPE_LABEL}={prefix.rstrip('-')}"}):
        api.remove_container(container["Id"], v=True, force=True)
    for volume in api.volumes(filters={"name": prefix}).get("Volumes") or []:
        if volume["Name"].startswith(prefix):
            api.remove_volume(volume["Name"], force=True)
    for network in api.networks(names=[prefix]):
        if network["Name"].startswith(prefix):
            api.remove_network(network["Id"])
