"""The Workspace custom resource as pydantic models.

These models are the single source of truth for the API: the CRD under ``crds/`` is generated from them
(``python -m controller.api.crd --write``), including the CEL rules, list-type annotations and defaults that
are attached here through ``json_schema_extra``. Every cross-field rule expressed in CEL is also enforced by a
Python validator, so the controller rejects a bad spec even when the CRD installed in a cluster is stale.
"""

from __future__ import annotations

import posixpath
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.config import JsonValue

from controller.api.base import ApiModel, cel
from controller.api.selectors import LabelSelector

GROUP = "molecule.ai"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Workspace"
PLURAL = "workspaces"
SINGULAR = "workspace"
SHORT_NAMES = ("ws",)
CATEGORIES = ("molecule",)

# Variables the controller injects into every container, as the Go provisioner did. A user value would
# silently override them in Docker (the last duplicate wins), so the API refuses them. PYTHONPATH is
# deliberately absent: overriding it was an intended, tested feature of the Go provisioner.
RESERVED_ENV_NAMES = (
    "WORKSPACE_ID",
    "WORKSPACE_CONFIG_PATH",
    "PLATFORM_URL",
    "MOLECULE_URL",
    "TIER",
    "PLUGINS_DIR",
    "AWARENESS_NAMESPACE",
    "AWARENESS_URL",
)

# The floor under every grant: a host path may be neither one of these nor below one. The Go provisioner's
# validateWorkspaceDir blocklist, plus /run (the Docker socket lives there; /var/run is a symlink to it)
# and /root (root's home: keys, credentials).
FORBIDDEN_HOST_PATH_ROOTS = (
    "/etc",
    "/var",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/sbin",
    "/bin",
    "/lib",
    "/usr",
    "/run",
    "/root",
)

# The controller writes the workspace's bearer token to this path under /configs itself.
AUTH_TOKEN_FILE = ".auth_token"

# The Secret the controller creates when spec.authToken is unset is named <metadata.name> + this suffix;
# a Secret name is at most 253 characters, which bounds metadata.name.
AUTH_TOKEN_SECRET_SUFFIX = "-auth-token"
MAX_WORKSPACE_NAME_LENGTH = 253 - len(AUTH_TOKEN_SECRET_SUFFIX)

DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DEFAULT_PROGRESS_DEADLINE_SECONDS = 600
MAX_PROGRESS_DEADLINE_SECONDS = 86400
MAX_WORKSPACE_ID_LENGTH = 63
# A DNS label: the names made from it are Docker names and the agent's host name on the network, where
# case does not tell names apart (the platform's IDs are lower-case UUIDs).
WORKSPACE_ID_PATTERN = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
WORKSPACE_ID_IMMUTABLE_MESSAGE = (
    "spec.workspaceID is immutable: it cannot be set, changed or removed once the Workspace exists"
)
RUNTIME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
ENV_PREFIX_PATTERN = r"^([A-Za-z_][A-Za-z0-9_]*)?$"
DATA_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
CONFIG_PATH_PATTERN = r"^[-._a-zA-Z0-9]+(/[-._a-zA-Z0-9]+)*$"
# [registry-host[:port]/]path-component(/path-component)*[:tag][@sha256:<64 hex>]; RE2-compatible, since the
# kube-apiserver evaluates schema patterns with Go's regexp.
IMAGE_REF_PATTERN = (
    r"^([a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]+)?/)?"
    r"[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(@sha256:[a-f0-9]{64})?$"
)
# A NUL byte cannot reach a process: its environment entries are C strings. Text that becomes an
# environment variable (env values, the URLs, the awareness namespace) may not hold one.
URL_PATTERN = r"^https?://[^\s\x00]+$"
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
TOKEN_MAX_LENGTH = 64

# Size: a Workspace must fit where Kubernetes keeps it. `kubectl apply` (client-side) copies the whole
# object into the last-applied-configuration annotation, and all of an object's annotations together may
# hold 256 KiB; its JSON escapes '<', '>' and '&' as six bytes each. So the free text a spec carries inline
# (config file contents and env values) shares one budget, the other fields are bounded so that the
# largest Workspace the schema admits, written entirely in the costliest characters, still fits (a unit
# test builds it). Larger configuration goes in ConfigMaps (spec.config.fromConfigMaps, 1 MiB each).
INLINE_TEXT_BUDGET = 24 * 1024
MAX_ENV = 64
MAX_ENV_FROM = 6
MAX_CONFIG_FILES = 64

PullPolicy = Literal["Always", "IfNotPresent", "Never"]
WorkspaceAccess = Literal["none", "read_only", "read_write"]
DeletionPolicy = Literal["Delete", "Retain"]
ImageUpdatePolicy = Literal["Manual", "Auto"]
UpdateStrategy = Literal["Recreate", "StartFirst"]
ShutdownPolicy = Literal["Suspend", "Delete"]
RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
CONTAINER_RUNTIME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$"
DURATION_PATTERN = r"^([0-9]{1,6}h)?([0-9]{1,8}m)?([0-9]{1,10}s)?$"
ContainerRuntimeName = Annotated[str, Field(max_length=63, pattern=CONTAINER_RUNTIME_PATTERN)]
"""An OCI runtime as a Docker daemon registers it (runc, runsc, ...)."""
Duration = Annotated[str, Field(min_length=2, max_length=32, pattern=DURATION_PATTERN)]
"""A Go-style duration of hours, minutes and seconds, e.g. "1h30m"."""
"""A duration as Go and kubectl write it, in hours, minutes and seconds: "8h", "90m", "1h30m", "45s"."""
WritePolicy = Literal["Always", "IfNotPresent"]
"""Who owns a file in /configs: the spec (Always, rewritten at every container create) or whoever wrote
it first (IfNotPresent, written only when the config volume has no such file)."""
ConditionStatus = Literal["True", "False", "Unknown"]
Phase = Literal[
    "Pending",
    "Creating",
    "Running",
    "Starting",
    "Unhealthy",
    "Restarting",
    "Exited",
    "Suspended",
    "Expired",
    "Hibernated",
    "Failed",
    "Terminating",
]


def nul_message(what: str) -> str:
    return f"{what} must not contain a NUL byte: a process's environment cannot carry one"


def no_nul_cel(what: str) -> JsonValue:
    return cel("!self.contains('\\u0000')", nul_message(what))


def _reject_nul(text: str, what: str) -> str:
    if "\x00" in text:
        raise ValueError(nul_message(what))
    return text


def _cel_list(names: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{name}'" for name in names) + "]"


# --- validation shared by the models and by callers that hold plain values -----------------------------


def reserved_env_name_message(name: str) -> str:
    return f"env name {name} is set by the controller and cannot be overridden"


def host_path_problem(path: str) -> str | None:
    """Why ``path`` may not be bind-mounted at /workspace, or None when it may.

    The rules are the Go provisioner's validateWorkspaceDir.

    The path must already be clean (no '//', '/./', trailing '/.'), so that the prefix blocklist, which the
    CRD also evaluates in CEL where no path cleaning exists, cannot be sidestepped by spelling.
    """
    if not path.startswith("/"):
        return "workspace.hostPath must be an absolute path"
    if ".." in path:
        return "workspace.hostPath must not contain '..'"
    if "//" in path or "/./" in path or path.endswith("/."):
        return "workspace.hostPath must be a clean path (no '//', '/./' or trailing '/.')"
    cleaned = posixpath.normpath(path)
    for root in FORBIDDEN_HOST_PATH_ROOTS:
        if cleaned == root or cleaned.startswith(root + "/"):
            return f"workspace.hostPath must not be or sit under {root}"
    if path.endswith("/"):
        return "workspace.hostPath must not end with '/' (the host's root directory cannot be mounted)"
    return None


def host_path_floor_cel(what: str) -> list[JsonValue]:
    """The CEL rules of `host_path_problem` for a string field (the schema checks them at apply time)."""
    roots = ", ".join(FORBIDDEN_HOST_PATH_ROOTS[:-1]) + " or " + FORBIDDEN_HOST_PATH_ROOTS[-1]
    return [
        cel("self.startsWith('/')", f"{what} must be an absolute path"),
        cel("!self.contains('..')", f"{what} must not contain '..'"),
        cel(
            "!self.contains('//') && !self.contains('/./') && !self.endsWith('/.')",
            f"{what} must be a clean path (no '//', '/./' or trailing '/.')",
        ),
        cel(
            "!self.endsWith('/')",
            f"{what} must not end with '/' (the host's root directory cannot be mounted)",
        ),
        cel(
            f"!{_cel_list(FORBIDDEN_HOST_PATH_ROOTS)}.exists(p, self == p || self.startsWith(p + '/'))",
            f"{what} must not be or sit under {roots}",
        ),
    ]


def workspace_access_problem(access: str, host_path: str | None) -> str | None:
    """None when (access, hostPath) is usable: the Go provisioner's ValidateWorkspaceAccess, reworded.

    "" is accepted as "none" for parity with the Go provisioner; the schema itself never lets "" through.
    """
    if access in ("", "none"):
        return None
    if access in ("read_only", "read_write"):
        if not host_path:
            return f"workspace.access {access} requires workspace.hostPath"
        return None
    return f"workspace.access {access!r} must be one of none, read_only, read_write"


def config_path_problem(path: str) -> str | None:
    """Why ``path`` cannot be a file under /configs, or None when it can."""
    if path.startswith("/"):
        return f"config file path {path!r} must be relative to /configs"
    segments = path.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        return f"config file path {path!r} must not contain empty, '.' or '..' segments"
    if path == AUTH_TOKEN_FILE:
        return f"config file path {AUTH_TOKEN_FILE} is written by the controller"
    return None


# --- spec ---------------------------------------------------------------------------------------------


class LocalObjectReference(ApiModel):
    """A reference to an object in the Workspace's namespace."""

    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)


class KeySelector(ApiModel):
    """A key of a Secret or ConfigMap in the Workspace's namespace."""

    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
    key: str = Field(max_length=253, pattern=DATA_KEY_PATTERN)
    optional: bool = Field(
        default=False, description="When true, a missing object or key leaves the variable unset."
    )


class EnvVarSource(ApiModel):
    """Where an env value comes from; exactly one reference is set."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.secretKeyRef) != has(self.configMapKeyRef)",
                    "valueFrom must set exactly one of secretKeyRef or configMapKeyRef",
                )
            ]
        }
    )

    secret_key_ref: KeySelector | None = None
    config_map_key_ref: KeySelector | None = None

    @model_validator(mode="after")
    def _exactly_one_ref(self) -> EnvVarSource:
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise ValueError("valueFrom must set exactly one of secretKeyRef or configMapKeyRef")
        return self


class EnvVar(ApiModel):
    """An environment variable for the agent container, appended after the controller's own variables."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.value) != has(self.valueFrom)",
                    "env must set exactly one of value or valueFrom",
                ),
                cel(
                    f"!(self.name in {_cel_list(RESERVED_ENV_NAMES)})",
                    "env name is set by the controller and cannot be overridden",
                    message_expression=(
                        "'env name ' + self.name + ' is set by the controller and cannot be overridden'"
                    ),
                    field_path=".name",
                ),
            ]
        }
    )

    name: str = Field(max_length=128, pattern=ENV_NAME_PATTERN)
    value: str | None = Field(
        default=None,
        max_length=INLINE_TEXT_BUDGET,
        json_schema_extra={"x-kubernetes-validations": [no_nul_cel("env value")]},
    )
    value_from: EnvVarSource | None = None

    @field_validator("value")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        return None if value is None else _reject_nul(value, "env value")

    @model_validator(mode="after")
    def _check(self) -> EnvVar:
        if (self.value is None) == (self.value_from is None):
            raise ValueError("env must set exactly one of value or valueFrom")
        if self.name in RESERVED_ENV_NAMES:
            raise ValueError(reserved_env_name_message(self.name))
        return self


class EnvFromReference(ApiModel):
    """A Secret or ConfigMap in the Workspace's namespace whose every key becomes a variable."""

    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
    optional: bool = Field(default=False, description="When true, a missing object is skipped.")


class EnvFromSource(ApiModel):
    """Every key of a Secret or ConfigMap as a variable named <prefix><key>, as in a Pod's envFrom."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.secretRef) != has(self.configMapRef)",
                    "envFrom must set exactly one of secretRef or configMapRef",
                )
            ]
        }
    )

    prefix: str = Field(
        default="",
        max_length=64,
        pattern=ENV_PREFIX_PATTERN,
        description="Put before each key; a key that does not then make a variable name is skipped.",
    )
    secret_ref: EnvFromReference | None = None
    config_map_ref: EnvFromReference | None = None

    @model_validator(mode="after")
    def _exactly_one_ref(self) -> EnvFromSource:
        if (self.secret_ref is None) == (self.config_map_ref is None):
            raise ValueError("envFrom must set exactly one of secretRef or configMapRef")
        return self


class ConfigFile(ApiModel):
    """A file written under /configs before the container starts."""

    path: str = Field(
        max_length=253,
        pattern=CONFIG_PATH_PATTERN,
        description="Path relative to /configs; nested directories are created.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!('/' + self + '/').contains('/../') && !('/' + self + '/').contains('/./')",
                    "config file path must not contain '.' or '..' segments",
                ),
                cel(f"self != '{AUTH_TOKEN_FILE}'", f"{AUTH_TOKEN_FILE} is written by the controller"),
            ]
        },
    )
    content: str = Field(max_length=INLINE_TEXT_BUDGET)
    write_policy: WritePolicy = Field(
        default="Always",
        description="Always: the spec wins, the file is rewritten at every container create. IfNotPresent: "
        "written only when /configs has no such file (the agent's and the platform's edits are kept).",
    )

    @field_validator("path")
    @classmethod
    def _check_path(cls, path: str) -> str:
        problem = config_path_problem(path)
        if problem:
            raise ValueError(problem)
        return path


class ConfigMapSource(ApiModel):
    """A ConfigMap whose every key becomes a file /configs/<key>."""

    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
    optional: bool = Field(default=False, description="When true, a missing ConfigMap is skipped.")
    write_policy: WritePolicy = Field(
        default="Always",
        description="For every file of this ConfigMap: Always (rewritten at every container create) or "
        "IfNotPresent (written only when /configs has no such file).",
    )


class ConfigSource(ApiModel):
    """The contents of /configs. One of the sources must provide config.yaml.

    ConfigMaps apply in order (a later one overrides an earlier one's key), then inline files override both.
    """

    files: tuple[ConfigFile, ...] = Field(
        default=(),
        max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["path"]},
    )
    from_config_maps: tuple[ConfigMapSource, ...] = Field(default=(), max_length=16)

    @field_validator("files")
    @classmethod
    def _unique_paths(cls, files: tuple[ConfigFile, ...]) -> tuple[ConfigFile, ...]:
        _require_unique([f.path for f in files], "config.files path")
        return files


HTTP_PATH_PATTERN = r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$"
"""An absolute URL path (and query) of RFC 3986 characters: no spaces, quotes or control characters."""


class HTTPGetAction(ApiModel):
    """An HTTP GET on the agent, from inside its container (http://127.0.0.1:<port><path>)."""

    path: str = Field(default="/", max_length=1024, pattern=HTTP_PATH_PATTERN)
    port: int = Field(default=8000, ge=1, le=65535, description="Default: the agent's port, 8000.")


class ReadinessCheck(ApiModel):
    """When the agent is Ready: it answers an HTTP GET with a 2xx or 3xx status.

    The controller sets it as the container's Docker health check (replacing the image's HEALTHCHECK),
    so the Docker daemon runs it wherever the controller is. It needs /bin/sh and one of curl, wget or
    python3 in the image. Docker marks the container healthy at the first success, and unhealthy after
    failureThreshold failures in a row; failures within initialDelaySeconds of the start do not count.
    """

    http_get: HTTPGetAction
    period_seconds: int = Field(default=10, ge=1, le=3600)
    timeout_seconds: int = Field(default=1, ge=1, le=60)
    failure_threshold: int = Field(default=3, ge=1, le=100)
    initial_delay_seconds: int = Field(default=0, ge=0, le=3600)


class ImageUpdate(ApiModel):
    """Keeping a tag's image current: the registry's digest for the tag is checked without pulling.

    Auto: a new digest is pulled and the container replaced with it. Manual: it is reported in
    status.image.updateAvailable, and applied when applyRequestedAt changes. A digest-pinned image has
    nothing to check.
    """

    policy: ImageUpdatePolicy
    interval_seconds: int = Field(
        default=300,
        ge=10,
        le=86400,
        description="How often the registry is asked (per image, not per Workspace).",
    )
    apply_requested_at: str | None = Field(
        default=None,
        max_length=TOKEN_MAX_LENGTH,
        description="Opaque token; changing it applies the available update now (Manual's approval).",
    )


class SecretKeyReference(ApiModel):
    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
    key: str = Field(default="token", max_length=253, pattern=DATA_KEY_PATTERN)


class AuthTokenSource(ApiModel):
    """The workspace's bearer token in /configs/.auth_token (mode 0600).

    secretRef: a token the platform issued, written before every container start (the Secret wins; a
    new value in it recreates the container). generate: a random token in a Secret the controller owns,
    written only when /configs has no token (one the agent saved is never overwritten).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.secretRef) != (has(self.generate) && self.generate)",
                    "authToken sets exactly one of secretRef or generate: true",
                )
            ]
        }
    )

    secret_ref: SecretKeyReference | None = None
    generate: bool = Field(
        default=False,
        description="Create a random token in the Secret <name>-auth-token (owned by the Workspace).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> AuthTokenSource:
        if (self.secret_ref is not None) == self.generate:
            raise ValueError("authToken sets exactly one of secretRef or generate: true")
        return self


class WorkspaceMount(ApiModel):
    """What is mounted at /workspace: a host directory, or (access none) the workspace's own named volume."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.access) || self.access == 'none' || has(self.hostPath)",
                    "workspace.access read_only/read_write requires workspace.hostPath",
                    message_expression="'workspace.access ' + self.access + ' requires workspace.hostPath'",
                    field_path=".hostPath",
                )
            ]
        }
    )

    host_path: str | None = Field(
        default=None,
        max_length=1024,
        json_schema_extra={"x-kubernetes-validations": host_path_floor_cel("workspace.hostPath")},
    )
    access: WorkspaceAccess = "none"

    @model_validator(mode="after")
    def _check(self) -> WorkspaceMount:
        if self.host_path is not None:
            problem = host_path_problem(self.host_path)
            if problem:
                raise ValueError(problem)
        problem = workspace_access_problem(self.access, self.host_path)
        if problem:
            raise ValueError(problem)
        return self


class SessionSpec(ApiModel):
    reset_requested_at: str | None = Field(
        default=None,
        max_length=TOKEN_MAX_LENGTH,
        description=(
            "Opaque token; changing it empties the claude-code session volume once "
            "(echoed in status.session.lastResetHandled)."
        ),
    )


class Awareness(ApiModel):
    """Injected as AWARENESS_NAMESPACE and AWARENESS_URL."""

    namespace: str = Field(
        min_length=1,
        max_length=253,
        json_schema_extra={"x-kubernetes-validations": [no_nul_cel("awareness.namespace")]},
    )

    @field_validator("namespace")
    @classmethod
    def _no_nul(cls, namespace: str) -> str:
        return _reject_nul(namespace, "awareness.namespace")

    url: str = Field(min_length=1, max_length=512, pattern=URL_PATTERN)


_INLINE_TEXT_CEL = (
    "(has(self.config) && has(self.config.files) ? self.config.files.map(f, size(f.content)).sum() : 0)"
    " + (has(self.env) ? self.env.filter(e, has(e.value)).map(e, size(e.value)).sum() : 0)"
)


def inline_text_message(total: int | str) -> str:
    return (
        f"spec.config.files contents and spec.env values hold at most {INLINE_TEXT_BUDGET} characters "
        f"together ({total} here): put larger configuration in a ConfigMap (spec.config.fromConfigMaps)"
    )


class Hibernation(ApiModel):
    """Idle agents stop costing memory: stopped when their network has been quiet for a while."""

    idle_after: Duration = Field(
        description='How long without traffic before the container is stopped (volumes kept), e.g. "30m". '
        "Traffic is what the container receives on its network interfaces (Docker's counters; a health "
        "check inside it is not traffic); under 2 KiB in a sampling window counts as none. At least 10s.",
    )


EgressPolicy = Literal["Open", "None", "AllowList"]
EGRESS_DESTINATION_PATTERN = r"^(\*\.)?[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?:[0-9]{1,5}$"
EgressDestination = Annotated[str, Field(max_length=260, pattern=EGRESS_DESTINATION_PATTERN)]
"""`host:port` (a DNS name, an IPv4 address, or `*.` and a domain for any name under it)."""


class Network(ApiModel):
    """What the agent may reach. Open: the workspace network and beyond, as always. None and AllowList
    isolate it: the agent sits alone on an internal network of its own (no route to the Docker host,
    other agents or the outside) behind a gateway container that publishes its endpoint and answers
    for its name on the workspace network; AllowList adds an HTTP proxy in the gateway (HTTP_PROXY and
    HTTPS_PROXY are set in the agent) that connects only to the destinations listed."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.egress == 'AllowList' ? has(self.allow) && size(self.allow) > 0 : "
                    "!has(self.allow) || size(self.allow) == 0",
                    "network.allow lists destinations when (and only when) egress is AllowList",
                )
            ]
        }
    )

    egress: EgressPolicy = Field(
        default="Open",
        description="Open (the default): no isolation. None: the agent reaches nothing (it is reached "
        "through its gateway). AllowList: only the destinations in allow, through the gateway's proxy.",
    )
    allow: list[EgressDestination] = Field(
        default_factory=list,
        max_length=32,
        description='Destinations as host:port, e.g. "api.anthropic.com:443", "*.example.com:443", '
        '"10.0.0.5:8080". Names are matched as written (lower case), addresses only as addresses.',
    )

    @model_validator(mode="after")
    def _allow_with_allow_list(self) -> Network:
        if (self.egress == "AllowList") != bool(self.allow):
            raise ValueError("network.allow lists destinations when (and only when) egress is AllowList")
        for destination in self.allow:
            port = int(destination.rpartition(":")[2])
            if not 1 <= port <= 65535:
                raise ValueError(f"network.allow: {destination} has no valid port (1-65535)")
        return self

    @property
    def isolated(self) -> bool:
        return self.egress != "Open"


class Placement(ApiModel):
    """Which DockerHost the Workspace runs on.

    Unset: the controller picks a Ready, schedulable host where the tier's memory and CPU fit, spreading
    load. Once placed, a Workspace stays on its host (its volumes live there), whatever this says later.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!(has(self.host) && has(self.hostSelector))",
                    "placement sets host or hostSelector, not both",
                )
            ]
        }
    )

    host: str | None = Field(
        default=None, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN, description="A DockerHost by name."
    )
    host_selector: LabelSelector | None = Field(
        default=None, description="DockerHosts by their labels; {} selects every host."
    )

    @model_validator(mode="after")
    def _one_way(self) -> Placement:
        if self.host is not None and self.host_selector is not None:
            raise ValueError("placement sets host or hostSelector, not both")
        return self


class WorkspaceSpec(ApiModel):
    """The desired agent workspace: one Docker container plus its volumes."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                # A message without the total: the apiserver's cost estimate of one with it is far too high.
                cel(f"{_INLINE_TEXT_CEL} <= {INLINE_TEXT_BUDGET}", inline_text_message("more")),
                # A transition rule (it sees oldSelf): checked on update only.
                cel(
                    "has(self.workspaceID) == has(oldSelf.workspaceID) && "
                    "(!has(self.workspaceID) || self.workspaceID == oldSelf.workspaceID)",
                    WORKSPACE_ID_IMMUTABLE_MESSAGE,
                ),
            ]
        }
    )

    workspace_id: str | None = Field(
        default=None,
        alias="workspaceID",
        min_length=1,
        max_length=MAX_WORKSPACE_ID_LENGTH,
        pattern=WORKSPACE_ID_PATTERN,
        description="The platform's ID of this workspace (a UUID); names, WORKSPACE_ID and the internal URL "
        "derive from it. Unset: the Workspace's metadata.uid. Immutable.",
    )
    adopt: bool = Field(
        default=False,
        description="Take over the Go provisioner's container and volumes of this workspaceID: the "
        "container is recreated under this controller, the volumes are kept as they are.",
    )
    template_ref: LocalObjectReference | None = Field(
        default=None,
        description="A WorkspaceTemplate in this namespace: the fields it sets apply here, and this spec may "
        "set one of them itself only where the template's allowOverrides lists it.",
    )
    runtime: str = Field(
        default="langgraph",
        max_length=63,
        pattern=RUNTIME_PATTERN,
        description="Agent runtime; selects the workspace-template image when spec.image is unset.",
    )
    image: str | None = Field(
        default=None,
        max_length=512,
        pattern=IMAGE_REF_PATTERN,
        description="Image reference overriding the runtime's image (tag or @sha256 digest pin).",
    )
    image_pull_policy: PullPolicy | None = Field(
        default=None,
        description="Unset: pull when missing locally, and re-pull moving tags such as latest.",
    )
    image_pull_secrets: tuple[LocalObjectReference, ...] = Field(
        default=(),
        max_length=8,
        description="kubernetes.io/dockerconfigjson Secrets in this namespace used to pull the image.",
    )
    tier: int = Field(default=2, ge=1, le=4, description="Isolation and resource tier, 1 (sandboxed) to 4.")
    env: tuple[EnvVar, ...] = Field(
        default=(),
        max_length=MAX_ENV,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    env_from: tuple[EnvFromSource, ...] = Field(
        default=(),
        max_length=MAX_ENV_FROM,
        description="Secrets and ConfigMaps whose keys become variables; a later source wins over an "
        "earlier one, and env wins over all of them.",
    )
    config: ConfigSource = ConfigSource()
    auth_token: AuthTokenSource | None = Field(
        default=None,
        description="Unset: no token is written; the one in /configs (the agent's, or the platform's) "
        "is left as it is.",
    )
    workspace: WorkspaceMount = WorkspaceMount()
    session: SessionSpec = SessionSpec()
    restart_requested_at: str | None = Field(
        default=None,
        max_length=TOKEN_MAX_LENGTH,
        description="Opaque token; changing it recreates the container.",
    )
    update_strategy: UpdateStrategy = Field(
        default="Recreate",
        description="How a changed configuration or image replaces the running container. Recreate: remove "
        "it, then start the new one. StartFirst: start the new one beside it (on the same volumes) and "
        "switch once it is Ready; one that fails is removed and the old one keeps serving.",
    )
    image_update: ImageUpdate | None = Field(
        default=None, description="Unset: a tag is pulled again only when the container is recreated."
    )
    readiness: ReadinessCheck | None = Field(
        default=None,
        description="Unset: Ready once the container runs and the image's HEALTHCHECK (if any) passes.",
    )
    progress_deadline_seconds: int = Field(
        default=DEFAULT_PROGRESS_DEADLINE_SECONDS,
        ge=10,
        le=MAX_PROGRESS_DEADLINE_SECONDS,
        description="Seconds a changed Workspace has to become Ready before it is Stalled "
        "(ProgressDeadlineExceeded); the controller goes on trying, more slowly.",
    )
    platform_url: str | None = Field(
        default=None,
        alias="platformURL",
        max_length=512,
        pattern=URL_PATTERN,
        description="Unset: the controller's PLATFORM_URL setting.",
    )
    awareness: Awareness | None = None
    suspend: bool = Field(
        default=False,
        description="Stop the container; it and its volumes are kept, and false starts it again.",
    )
    shutdown_time: str | None = Field(
        default=None,
        max_length=64,
        pattern=RFC3339_PATTERN,
        description="RFC 3339: when the Workspace shuts down, as spec.shutdownPolicy says.",
        json_schema_extra={"format": "date-time"},
    )
    shutdown_after: Duration | None = Field(
        default=None,
        description='How long after its creation the Workspace shuts down, e.g. "8h" or "1h30m" (with '
        "shutdownTime as well, the earlier of the two).",
    )
    shutdown_policy: ShutdownPolicy | None = Field(
        default=None,
        description="What shutting down means. Suspend (unset): the container stops, its volumes stay, and "
        "moving shutdownTime or shutdownAfter later starts it again. Delete: the Workspace is deleted (its "
        "volumes as deletionPolicy says).",
    )
    container_runtime: ContainerRuntimeName | None = Field(
        default=None,
        description="The OCI runtime the container runs under, as its DockerHost names it (e.g. runsc for "
        "gVisor). Unset: the host's default (runc). Only hosts offering it are chosen; none: "
        "Stalled/Unschedulable.",
    )
    hibernation: Hibernation | None = Field(
        default=None, description="Unset: the Workspace runs however idle it is."
    )
    wake_requested_at: str | None = Field(
        default=None,
        max_length=TOKEN_MAX_LENGTH,
        description="Opaque token; a new value wakes a hibernated Workspace (`kubectl workspace wake`), "
        "echoed in status.hibernation.lastWakeHandled.",
    )
    network: Network | None = Field(
        default=None,
        description="Network isolation. Unset: Open (the workspace network and beyond). Not on tier 4, "
        "which runs on the host's network.",
    )
    deletion_policy: DeletionPolicy = Field(
        default="Delete",
        description="What happens to the workspace's volumes when the Workspace is deleted.",
    )
    placement: Placement = Placement()

    @field_validator("shutdown_time")
    @classmethod
    def _a_time(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError as exc:
                raise ValueError(f"shutdownTime {value!r} is not a time") from exc
        return value

    @field_validator("env")
    @classmethod
    def _unique_env(cls, env: tuple[EnvVar, ...]) -> tuple[EnvVar, ...]:
        _require_unique([e.name for e in env], "env name")
        return env

    @model_validator(mode="after")
    def _inline_text_budget(self) -> WorkspaceSpec:
        total = sum(len(f.content) for f in self.config.files) + sum(len(e.value or "") for e in self.env)
        if total > INLINE_TEXT_BUDGET:
            raise ValueError(inline_text_message(total))
        return self


# --- status -------------------------------------------------------------------------------------------


class Condition(ApiModel):
    """metav1.Condition."""

    type: str = Field(max_length=316, pattern=CONDITION_TYPE_PATTERN)
    status: ConditionStatus
    reason: str = Field(min_length=1, max_length=1024, pattern=CONDITION_REASON_PATTERN)
    message: str = Field(max_length=32768)
    last_transition_time: str = Field(max_length=64, description="RFC 3339.")
    observed_generation: int | None = Field(default=None, ge=0)


class ContainerStatus(ApiModel):
    """What Docker reported about the workspace container."""

    name: str | None = Field(default=None, max_length=253)
    id: str | None = Field(default=None, max_length=128)
    image: str | None = Field(default=None, max_length=512)
    image_id: str | None = Field(default=None, alias="imageID", max_length=256)
    image_digest: str | None = Field(
        default=None,
        max_length=512,
        description="The registry digest the image resolved to (repo@sha256:...).",
    )
    state: str | None = Field(default=None, max_length=32)
    health: str | None = Field(default=None, max_length=32)
    started_at: str | None = Field(default=None, max_length=64)
    restart_count: int | None = Field(default=None, ge=0)
    exit_code: int | None = Field(default=None, description="The last exit code of the agent process.")
    oom_killed: bool | None = Field(
        default=None, description="Whether the kernel killed it for memory (OOM)."
    )
    finished_at: str | None = Field(default=None, max_length=64)
    config_hash: str | None = Field(default=None, max_length=128)


class AdoptedStatus(ApiModel):
    """What the controller took over from the Go provisioner (spec.adopt)."""

    container: str | None = Field(default=None, max_length=253, description="Its name and ID, then.")
    volumes: tuple[Annotated[str, Field(max_length=253)], ...] = Field(
        default=(),
        max_length=8,
        description="Volumes used as they were (Docker cannot label them: they are removed with the "
        "Workspace only when its deletionPolicy is Delete).",
    )
    adopted_at: str | None = Field(default=None, max_length=64, description="RFC 3339.")


class RolloutStatus(ApiModel):
    """The configuration being rolled out: since when, and when it first became Ready."""

    config_hash: str = Field(max_length=128)
    started_at: str = Field(max_length=64, description="RFC 3339: when this configuration was first seen.")
    ready_at: str | None = Field(default=None, max_length=64, description="RFC 3339.")


class ImageStatus(ApiModel):
    """spec.imageUpdate's view of the registry: what the tag names there, and whether it runs."""

    latest: str | None = Field(
        default=None,
        max_length=512,
        description="repo@sha256: the tag's digest in the registry at the last check.",
    )
    update_available: str | None = Field(
        default=None,
        max_length=512,
        description="repo@sha256: a digest of the tag newer than the running one.",
    )
    checked_at: str | None = Field(default=None, max_length=64, description="RFC 3339: the last check.")
    last_apply_handled: str | None = Field(default=None, max_length=TOKEN_MAX_LENGTH)
    error: str | None = Field(default=None, max_length=1024, description="Why the last check failed.")


class SessionStatus(ApiModel):
    last_reset_handled: str | None = Field(default=None, max_length=TOKEN_MAX_LENGTH)


class HibernationStatus(ApiModel):
    hibernated_at: str | None = Field(
        default=None, max_length=64, description="RFC 3339: set while the Workspace is hibernated."
    )
    last_wake_handled: str | None = Field(default=None, max_length=TOKEN_MAX_LENGTH)


class TemplateStatus(ApiModel):
    """The WorkspaceTemplate the spec was resolved with."""

    name: str = Field(max_length=253)
    generation: int = Field(ge=0, description="The template's metadata.generation that was applied.")


class WorkspaceStatus(ApiModel):
    observed_generation: int | None = Field(default=None, ge=0)
    conditions: tuple[Condition, ...] = Field(
        default=(),
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    phase: Phase | None = None
    container: ContainerStatus | None = None
    host: str | None = Field(
        default=None, max_length=253, description="The DockerHost the Workspace is placed on (for good)."
    )
    workspace_id: str | None = Field(
        default=None,
        alias="workspaceID",
        max_length=MAX_WORKSPACE_ID_LENGTH,
        description="The ID the names and WORKSPACE_ID derive from (spec.workspaceID, or the uid).",
    )
    endpoint: str | None = Field(default=None, max_length=256)
    internal_url: str | None = Field(default=None, alias="internalURL", max_length=256)
    adopted: AdoptedStatus | None = None
    rollout: RolloutStatus | None = None
    image: ImageStatus | None = None
    auth_token_secret_name: str | None = Field(default=None, max_length=253)
    session: SessionStatus | None = None
    last_handled_restart_at: str | None = Field(default=None, max_length=TOKEN_MAX_LENGTH)
    last_handled_reconcile_at: str | None = Field(default=None, max_length=TOKEN_MAX_LENGTH)
    template: TemplateStatus | None = None
    hibernation: HibernationStatus | None = None
    runtime: str | None = Field(
        default=None,
        max_length=63,
        description="The agent runtime the spec resolves to (with its template, and the default when unset).",
    )
    tier: int | None = Field(default=None, ge=1, le=4, description="The tier the spec resolves to.")

    def to_dict(self) -> dict[str, Any]:
        """The status as the apiserver stores it: camelCase, unset fields omitted."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Workspace(ApiModel):
    """A Molecule AI agent workspace, run by the controller as a Docker container."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"size(self.metadata.name) <= {MAX_WORKSPACE_NAME_LENGTH}",
                    f"metadata.name must be at most {MAX_WORKSPACE_NAME_LENGTH} characters, so that the "
                    f"Secret <name>{AUTH_TOKEN_SECRET_SUFFIX} can be named",
                )
            ]
        }
    )

    api_version: str = API_VERSION
    kind: str = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: WorkspaceSpec
    status: WorkspaceStatus | None = None

    @field_validator("metadata")
    @classmethod
    def _name_leaves_room_for_token_secret(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        name = metadata.get("name")
        if isinstance(name, str) and len(name) > MAX_WORKSPACE_NAME_LENGTH:
            raise ValueError(
                f"metadata.name must be at most {MAX_WORKSPACE_NAME_LENGTH} characters, so that the "
                f"Secret <name>{AUTH_TOKEN_SECRET_SUFFIX} can be named"
            )
        return metadata


def _require_unique(keys: list[str], what: str) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"duplicate {what} {key!r}")
        seen.add(key)
