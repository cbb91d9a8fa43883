"""Where Workspaces run: the DockerHost resource (cluster-scoped), as pydantic models.

A `DockerHost` names one Docker daemon the controller drives: how to reach it (a `unix://` socket, `tcp://`
with TLS client certificates from a Secret, or `ssh://` through the controller's ssh client), its labels
(for `spec.placement.hostSelector`), optional capacity overrides, and whether new Workspaces may be placed
on it (`unschedulable`, as `kubectl cordon` sets on a Node). The controller reports what it sees in the
status: whether the daemon answers (`Ready`), what `docker info` says, and what it has placed there.

Without any DockerHost the controller drives one implicit host, `local` (the daemon of `DOCKER_HOST` or the
default socket), so a single-daemon setup needs no configuration. A DockerHost named like the implicit host
takes its place.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator

from controller.api.base import ApiModel, cel
from controller.api.workspace import API_VERSION, DNS_SUBDOMAIN_PATTERN, Condition

HOST_KIND = "DockerHost"
HOST_PLURAL = "dockerhosts"
HOST_SINGULAR = "dockerhost"
HOST_SHORT_NAMES = ("dh",)

ENDPOINT_PATTERN = r"^(unix:///[^\s]+|tcp://[^\s/]+|ssh://[^\s/]+)$"
ENDPOINT_MESSAGE = (
    "endpoint must be unix:///path/to/docker.sock, tcp://host:port or ssh://[user@]host, without spaces"
)
TLS_SECRET_KEYS = ("ca.crt", "tls.crt", "tls.key")


class SecretReference(ApiModel):
    """A Secret in a named namespace (a DockerHost is cluster-scoped)."""

    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
    namespace: str = Field(max_length=63, pattern=DNS_SUBDOMAIN_PATTERN)


class DockerHostTLS(ApiModel):
    """TLS for a `tcp://` endpoint: the daemon's CA and the controller's client certificate."""

    secret_ref: SecretReference = Field(
        description="A Secret with keys ca.crt, tls.crt and tls.key (PEM), as `dockerd --tlsverify` expects."
    )


class HostCapacity(ApiModel):
    """What placement may fill, instead of what `docker info` reports (e.g. to keep room for the host)."""

    cpus: float | None = Field(default=None, ge=0.01, le=4096)
    memory_mib: int | None = Field(default=None, alias="memoryMiB", ge=1, le=1 << 30)


class DockerHostSpec(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.tls) || self.endpoint.startsWith('tcp://')",
                    "tls applies to tcp:// endpoints only",
                )
            ]
        }
    )

    endpoint: str = Field(
        max_length=512,
        description="unix:///path/to/docker.sock, tcp://host:port (with tls) or ssh://user@host.",
        json_schema_extra={
            "x-kubernetes-validations": [cel(f"self.matches(r'{ENDPOINT_PATTERN}')", ENDPOINT_MESSAGE)]
        },
    )

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not re.fullmatch(ENDPOINT_PATTERN, value):
            raise ValueError(ENDPOINT_MESSAGE)
        return value

    tls: DockerHostTLS | None = None
    capacity: HostCapacity | None = Field(
        default=None, description="Overrides of the CPUs and memory `docker info` reports."
    )
    unschedulable: bool = Field(
        default=False,
        description="No new Workspace is placed here; those already here stay (`kubectl cordon` for hosts).",
    )


class HostInfo(ApiModel):
    """What `docker info` said the last time the daemon answered."""

    server_version: str | None = Field(default=None, max_length=64)
    api_version: str | None = Field(default=None, max_length=16)
    operating_system: str | None = Field(default=None, max_length=256)
    architecture: str | None = Field(default=None, max_length=64)
    cpus: int | None = Field(default=None, ge=0)
    memory_bytes: int | None = Field(default=None, ge=0)
    runtimes: tuple[Annotated[str, Field(max_length=63)], ...] | None = Field(
        default=None, max_length=32, description="The OCI runtimes the daemon offers (spec.containerRuntime)."
    )


class HostResources(ApiModel):
    cpus: float = Field(default=0, ge=0)
    memory_mib: int = Field(default=0, alias="memoryMiB", ge=0)


class HostAllocation(HostResources):
    """What the Workspaces placed here take, by their tiers' limits."""

    workspaces: int = Field(default=0, ge=0)
    by_tier: dict[str, int] = Field(
        default_factory=dict,
        description="Workspaces per tier ('1' to '4').",
        json_schema_extra={"maxProperties": 4},
    )


class DockerHostStatus(ApiModel):
    observed_generation: int | None = Field(default=None, ge=0)
    conditions: tuple[Condition, ...] = Field(
        default=(),
        max_length=8,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    info: HostInfo | None = None
    capacity: HostResources | None = Field(
        default=None, description="What placement may fill: spec.capacity, else what docker info says."
    )
    allocated: HostAllocation | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class DockerHost(ApiModel):
    """A Docker daemon Workspaces are placed on."""

    api_version: str = API_VERSION
    kind: str = HOST_KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: DockerHostSpec
    status: DockerHostStatus | None = None
