"""Names of the Docker objects that belong to a workspace, derived from its workspace ID.

The workspace ID is the platform's (spec.workspaceID) or else the Kubernetes UID. The Go provisioner's
names are kept, so the platform (its proxy, Files API, terminal) and tooling that knows them (``docker ps
--filter name=ws-``) find the containers. The workspace volume: the Go provisioner named it with the
*full* ID; a Workspace with the platform's ID keeps that name (the volume it takes over is that one),
one named by its UID has ``ws-<id12>-workspace`` like its siblings.
"""

from __future__ import annotations

from controller.api.workspace import AUTH_TOKEN_SECRET_SUFFIX
from controller.core.identity import WorkspaceRef

CONTAINER_NAME_PREFIX = "ws-"
SHORT_ID_LENGTH = 12
AGENT_PORT = 8000
CONFIG_MOUNT_PATH = "/configs"
WORKSPACE_MOUNT_PATH = "/workspace"
SESSION_MOUNT_PATH = "/root/.claude/sessions"
LOOPBACK = "127.0.0.1"


def short_id(workspace_id: str) -> str:
    """The first 12 characters, as the Go provisioner truncates (only when longer)."""
    return workspace_id[:SHORT_ID_LENGTH]


def container_name(workspace_id: str) -> str:
    return f"{CONTAINER_NAME_PREFIX}{short_id(workspace_id)}"


WARM_SUFFIX = "-warm"
"""A warm pool slot's container is named ``ws-<slot12>-warm`` until a Workspace is bound to it; the
binding renames it to ``ws-<slot12>`` (so what is warm, and what is taken, is plain in ``docker ps``)."""


def warm_name(workspace_id: str) -> str:
    return f"{container_name(workspace_id)}{WARM_SUFFIX}"


def config_volume_name(workspace_id: str) -> str:
    return f"{container_name(workspace_id)}-configs"


def session_volume_name(workspace_id: str) -> str:
    return f"{container_name(workspace_id)}-claude-sessions"


def workspace_volume_name(workspace_id: str) -> str:
    return f"{container_name(workspace_id)}-workspace"


def workspace_volume_of(workspace: WorkspaceRef) -> str:
    """The /workspace volume: ``ws-<full id>-workspace`` for the platform's ID, as the Go provisioner
    named it; ``ws-<uid12>-workspace`` otherwise."""
    if workspace.platform_id:
        return f"{CONTAINER_NAME_PREFIX}{workspace.platform_id}-workspace"
    return workspace_volume_name(workspace.workspace_id)


def internal_url(workspace_id: str) -> str:
    """How other containers on the workspace network reach the agent (its network alias)."""
    return f"http://{container_name(workspace_id)}:{AGENT_PORT}"


def endpoint_url(host_ip: str, host_port: str | int) -> str:
    """The host-side URL of a published agent port; an unspecified bind address is reached over loopback."""
    ip = host_ip if host_ip and host_ip not in ("0.0.0.0", "::") else LOOPBACK
    if ":" in ip:
        ip = f"[{ip}]"
    return f"http://{ip}:{host_port}"


def host_network_endpoint() -> str:
    """A host-network (tier 4) container listens on the host's own port 8000."""
    return endpoint_url(LOOPBACK, AGENT_PORT)


def auth_token_secret_name(workspace_name: str) -> str:
    """The Secret the controller creates for a workspace whose spec.authToken is unset."""
    return f"{workspace_name}{AUTH_TOKEN_SECRET_SUFFIX}"
