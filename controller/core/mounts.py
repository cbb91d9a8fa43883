"""The container's bind mounts: /configs, /workspace and the claude-code session directory."""

from __future__ import annotations

from controller.core import naming
from controller.core.tiers import DOCKER_SOCKET_BIND, TierHostConfig

SESSION_RUNTIME = "claude-code"


def workspace_mount(workspace_id: str, host_path: str | None, access: str, volume: str | None = None) -> str:
    """The /workspace bind (the Go provisioner's buildWorkspaceMount matrix).

    ============  ===================  ===========================================
    host path     access               mount
    ============  ===================  ===========================================
    unset         any                  ``ws-<id12>-workspace:/workspace`` (volume)
    set           none                 the same named volume
    set           read_only            ``<path>:/workspace:ro``
    set           read_write or ""     ``<path>:/workspace``
    ============  ===================  ===========================================

    `volume` names the volume when it is not the default (`naming.workspace_volume_of`).
    """
    if not host_path or access == "none":
        return f"{volume or naming.workspace_volume_name(workspace_id)}:{naming.WORKSPACE_MOUNT_PATH}"
    if access == "read_only":
        return f"{host_path}:{naming.WORKSPACE_MOUNT_PATH}:ro"
    return f"{host_path}:{naming.WORKSPACE_MOUNT_PATH}"


def config_mount(workspace_id: str) -> str:
    # Read-write: the agent and the platform's Files API write there.
    return f"{naming.config_volume_name(workspace_id)}:{naming.CONFIG_MOUNT_PATH}"


def session_mount(workspace_id: str) -> str:
    return f"{naming.session_volume_name(workspace_id)}:{naming.SESSION_MOUNT_PATH}"


def uses_session_volume(runtime: str, tier: TierHostConfig) -> bool:
    """Only claude-code keeps sessions on disk; tier 1 mounts nothing but /configs."""
    return runtime == SESSION_RUNTIME and not tier.config_mount_only


def uses_workspace_volume(host_path: str | None, access: str, tier: TierHostConfig) -> bool:
    """Whether the named /workspace volume (rather than a host directory, or nothing) is mounted."""
    return not tier.config_mount_only and (not host_path or access == "none")


def container_binds(
    workspace_id: str,
    *,
    runtime: str,
    tier: TierHostConfig,
    host_path: str | None,
    access: str,
    docker_socket: bool = False,
    workspace_volume: str | None = None,
) -> tuple[str, ...]:
    """Binds in the Go provisioner's order: /configs, /workspace, session volume, Docker socket.

    The socket is mounted for a tier that would have it (4) only when `docker_socket` allows it: a
    WorkspacePolicy must grant it, since the Docker API is root on the host.
    """
    if tier.config_mount_only:
        return (config_mount(workspace_id),)
    binds = [config_mount(workspace_id), workspace_mount(workspace_id, host_path, access, workspace_volume)]
    if uses_session_volume(runtime, tier):
        binds.append(session_mount(workspace_id))
    if tier.mount_docker_socket and docker_socket:
        binds.append(DOCKER_SOCKET_BIND)
    return tuple(binds)
