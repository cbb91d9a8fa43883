"""How the integration tests address the session's registries, and per-test names and cleanup."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

IMAGE_PREFIX = "molecule-ai/workspace-template"
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
