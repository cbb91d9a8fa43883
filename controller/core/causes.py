"""The one vocabulary for why a Workspace is not (yet) what its spec asks: a `Reason` with a message.

Every part that can fail or wait says so with a `Cause`: planning (`plan_workspace`), resolving inputs,
the decision (`decide`), a runtime failure (`failures`). The conditions carry it to the status unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    # Ready
    CONTAINER_RUNNING = "ContainerRunning"
    CONTAINER_STARTING = "ContainerStarting"
    CONTAINER_UNHEALTHY = "ContainerUnhealthy"
    CONTAINER_RESTARTING = "ContainerRestarting"
    CONTAINER_EXITED = "ContainerExited"
    CONTAINER_NOT_RUNNING = "ContainerNotRunning"
    GATEWAY_NOT_RUNNING = "GatewayNotRunning"
    CONTAINER_MISSING = "ContainerMissing"
    CONFIG_OUTDATED = "ConfigOutdated"
    SUSPENDED = "Suspended"
    EXPIRED = "Expired"
    HIBERNATED = "Hibernated"
    WOKEN = "Woken"
    DELETING = "Deleting"
    # Synced
    RECONCILE_SUCCESS = "ReconcileSuccess"
    RECONCILE_ERROR = "ReconcileError"
    DOCKER_UNAVAILABLE = "DockerUnavailable"
    HOST_UNAVAILABLE = "HostUnavailable"
    RECONCILE_PAUSED = "ReconcilePaused"
    # Reconciling
    PROGRESSING = "Progressing"
    CREATING = "Creating"
    PULLING = "Pulling"
    ROLLING_OUT = "RollingOut"
    ROLLOUT_FAILED = "RolloutFailed"
    PLACING = "Placing"
    # Stalled: the spec or a dependency must change before another attempt can succeed
    IMAGE_NOT_FOUND = "ImageNotFound"
    REGISTRY_AUTH_FAILED = "RegistryAuthFailed"
    UNKNOWN_RUNTIME = "UnknownRuntime"
    NO_CONFIG_SOURCE = "NoConfigSource"
    SECRET_NOT_FOUND = "SecretNotFound"
    CONFIG_MAP_NOT_FOUND = "ConfigMapNotFound"
    CRASH_LOOP = "CrashLoop"
    INVALID_SPEC = "InvalidSpec"
    INVALID_CONFIG = "InvalidConfig"
    INVALID_AUTH_TOKEN = "InvalidAuthToken"
    NAME_CONFLICT = "NameConflict"
    ID_CONFLICT = "IDConflict"
    VOLUME_CONFLICT = "VolumeConflict"
    CONTAINER_REJECTED = "ContainerRejected"
    POLICY_DENIED = "PolicyDenied"
    TEMPLATE_NOT_FOUND = "TemplateNotFound"
    TEMPLATE_OVERRIDE_DENIED = "TemplateOverrideDenied"
    SLOT_NOT_BOUND = "SlotNotBound"
    NOT_POOLABLE = "NotPoolable"
    UNSCHEDULABLE = "Unschedulable"
    PLACEMENT_CONFLICT = "PlacementConflict"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"


@dataclass(frozen=True)
class Cause:
    """A reason (CamelCase, for machines) with a message (for people)."""

    reason: str
    message: str = ""
