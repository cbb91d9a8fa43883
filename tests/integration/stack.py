"""How the integration tests address the session's registries, shape their containers, and name and
clean up what each test creates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.port.values import ContainerSpec, FileTree, PortBinding

IMAGE_PREFIX = "molecule-ai/workspace-template"
SCOPE_LABEL = "workspace-controller.test/scope"
AGENT_PORT = "8000/tcp"
LOOPBACK = "127.0.0.1"
READ_ONLY_TMPFS = {"/tmp": "rw,noexec,nosuid,size=64m"}

NO_FILES = FileTree(root="/", files={})
"""For a container that needs no files: an empty archive, unpacked at a root every container has."""


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


def container_spec(
    name: str,
    image: str,
    *,
    labels: Mapping[str, str],
    env: Mapping[str, str] | None = None,
    restart: str = "no",
    publish: bool = False,
    binds: Sequence[str] = (),
    read_only: bool = False,
    network: str | None = None,
    aliases: Sequence[str] = (),
    platform: str | None = None,
) -> ContainerSpec:
    """A `ContainerSpec` with only what a test asks for: no limits, Docker's defaults otherwise.

    `publish` binds the agent port to an ephemeral port on loopback (as a workspace's is); `read_only`
    makes the root filesystem read-only with a writable /tmp; `network` joins that network (pass its ID
    to `create_container`) with `aliases`, else the container is on Docker's default bridge.
    """
    return ContainerSpec(
        name=name,
        image=image,
        platform=platform,
        env=tuple(f"{key}={value}" for key, value in (env or {}).items()),
        labels=dict(labels),
        exposed_port=AGENT_PORT,
        port_bindings=(PortBinding(AGENT_PORT, LOOPBACK),) if publish else (),
        restart_policy=restart,
        network=network,
        aliases=tuple(aliases),
        binds=tuple(binds),
        read_only_rootfs=read_only,
        tmpfs=READ_ONLY_TMPFS if read_only else {},
        memory=0,
        nano_cpus=0,
        privileged=False,
        pid_mode=None,
        network_mode=network or "default",
        cap_drop=(),
        cap_add=(),
        security_opt=(),
        pids_limit=0,
    )
