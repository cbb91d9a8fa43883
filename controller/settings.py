"""Operator-level settings, read once from the controller's environment (`ControllerSettings.from_env`).

Every variable the controller reads is read here and nowhere else; the command line (`__main__`) may
override the few that are also flags.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from controller.api.selectors import LabelSelector
from controller.api.workspace import RUNTIME_PATTERN
from controller.core.selectors import parse_selector
from controller.core.tiers import DEFAULT_TIER_LIMITS, TierLimits

DEFAULT_REGISTRY_PREFIX = "ghcr.io/molecule-ai"
DEFAULT_NETWORK = "molecule-monorepo-net"
DEFAULT_PLATFORM_URL = "http://host.docker.internal:8080"
DEFAULT_INSTANCE = "default"
DEFAULT_GATEWAY_IMAGE = "workspace-controller:dev"
"""The image of an isolated Workspace's gateway (`workspace-controller-gateway`): the controller's own,
as `make image` tags it. Deployments set WC_GATEWAY_IMAGE to the image the controller runs from."""
# The Go provisioner's runtime list; order is pinned alphabetical.
KNOWN_RUNTIMES = (
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

# Docker accepts any label value, but the instance name is also meant to be usable as a Kubernetes label
# value (metrics, events), so it keeps to that alphabet.
_INSTANCE_PATTERN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")
_HOST_NAME_PATTERN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DEFAULT_LOCAL_HOST = "local"
_GO_INT = re.compile(r"[+-]?[0-9]+")
_INT64_MAX = 2**63 - 1
_LOG_FORMATS = ("text", "json")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class ControllerSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    registry_prefix: str = DEFAULT_REGISTRY_PREFIX
    image_platform: str = ""
    tier_limits: Mapping[int, TierLimits] = Field(default_factory=lambda: dict(DEFAULT_TIER_LIMITS))
    network: str = DEFAULT_NETWORK
    gateway_image: str = DEFAULT_GATEWAY_IMAGE
    platform_url: str = DEFAULT_PLATFORM_URL
    instance: str = DEFAULT_INSTANCE
    resync_seconds: int = 30
    docker_timeout_seconds: int = 30
    docker_concurrency: int = 4
    pull_window_seconds: int = 30
    """WC_PULL_WINDOW: a moving tag pulled this recently on a host serves the creates that follow without
    another pull (0: every create pulls, as the Go provisioner did)."""
    sweep_interval_seconds: int = 60
    sweep_grace_seconds: int = 300
    sweep_dry_run: bool = False
    image_gc_after_seconds: int = 0
    """WC_IMAGE_GC_AFTER: remove workspace images unused this long; 0 (the default): never."""
    image_gc_interval_seconds: int = 60
    crashloop_restarts: int = 5
    crashloop_window_seconds: int = 300
    known_runtimes: tuple[str, ...] = KNOWN_RUNTIMES
    runtime_images: Mapping[str, str] = Field(default_factory=dict)
    """WC_RUNTIME_IMAGES: runtime -> image, over `<prefix>/workspace-template-<runtime>:latest`."""
    docker_host: str | None = None
    """Where the Docker daemon is (DOCKER_HOST); None for the default socket. The Docker SDK reads it,
    with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, itself: this copy is for the log."""
    local_host: str = DEFAULT_LOCAL_HOST
    """The name of the implicit DockerHost (the daemon of DOCKER_HOST or the default socket); empty: no
    implicit host, only DockerHost objects. A DockerHost object of the same name takes its place."""
    host_selector: LabelSelector | None = None
    """WC_HOST_SELECTOR: drive only the DockerHosts whose labels match (a shard); None: every one."""
    workspace_selector: LabelSelector | None = None
    """WC_WORKSPACE_SELECTOR: reconcile only the Workspaces whose labels match (a shard); None: every one."""
    leader_elect: bool = False
    """WC_LEADER_ELECT: act only while holding the Lease `lease_namespace`/`lease_name`."""
    lease_name: str = "workspace-controller-default"
    lease_namespace: str = "default"
    identity: str = ""
    """This replica's name in the Lease (WC_IDENTITY, else POD_NAME, else host name and process id)."""
    lease_duration_seconds: int = 15
    renew_deadline_seconds: float = 10.0
    retry_period_seconds: float = 2.0
    metrics_port: int = 8080
    metrics_addr: str = "127.0.0.1"
    liveness: str = "http://127.0.0.1:8081/healthz"
    log_format: str = "text"
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ControllerSettings:
        """Read settings from an environment mapping (usually ``os.environ``).

        The Go provisioner's variables keep its forgiving rules (an empty or malformed value means the
        default); the controller's own WC_* variables are new, so a malformed one stops start-up with a
        ValueError.
        """
        instance = env.get("WC_INSTANCE") or DEFAULT_INSTANCE
        if not _INSTANCE_PATTERN.fullmatch(instance):
            raise ValueError(
                "WC_INSTANCE must be 1-63 letters, digits, '.', '_' or '-', starting and ending with a "
                f"letter or digit; got {instance!r}"
            )
        leader_elect = _strict_bool(env, "WC_LEADER_ELECT", default=False)
        lease_name = env.get("WC_LEASE_NAME") or "workspace-controller-" + (
            re.sub(r"[^a-z0-9.-]+", "-", instance.lower()).strip("-.") or DEFAULT_INSTANCE
        )
        if not _HOST_NAME_PATTERN.fullmatch(lease_name) or len(lease_name) > 253:
            raise ValueError(f"WC_LEASE_NAME must be a Lease name (a DNS subdomain); got {lease_name!r}")
        lease_namespace = env.get("WC_LEASE_NAMESPACE") or env.get("POD_NAMESPACE") or "default"
        identity = env.get("WC_IDENTITY") or env.get("POD_NAME") or f"{socket.gethostname()}_{os.getpid()}"
        lease_duration = _strict_int(env, "WC_LEASE_DURATION", 15, minimum=1)
        renew_deadline = _strict_float(env, "WC_RENEW_DEADLINE", 10.0)
        retry_period = _strict_float(env, "WC_RETRY_PERIOD", 2.0)
        if leader_elect and not 0 < retry_period < renew_deadline < lease_duration:
            raise ValueError(
                "leader election needs 0 < WC_RETRY_PERIOD < WC_RENEW_DEADLINE < WC_LEASE_DURATION; got "
                f"{retry_period:g} < {renew_deadline:g} < {lease_duration}"
            )
        runtime_images = _runtime_images(env.get("WC_RUNTIME_IMAGES", ""))
        extra = _runtime_names(env.get("WC_RUNTIMES", ""), "WC_RUNTIMES")
        known_runtimes = tuple(sorted({*KNOWN_RUNTIMES, *extra, *runtime_images}))
        return cls(
            registry_prefix=env.get("MOLECULE_IMAGE_REGISTRY") or DEFAULT_REGISTRY_PREFIX,
            # Set-but-empty is a deliberate "no platform preference", as in the Go provisioner.
            image_platform=env.get("MOLECULE_IMAGE_PLATFORM", ""),
            tier_limits=tier_limits_from_env(env),
            network=env.get("MOLECULE_NETWORK") or DEFAULT_NETWORK,
            gateway_image=env.get("WC_GATEWAY_IMAGE") or DEFAULT_GATEWAY_IMAGE,
            platform_url=env.get("PLATFORM_URL") or DEFAULT_PLATFORM_URL,
            instance=instance,
            resync_seconds=_strict_int(env, "WC_RESYNC_SECONDS", 30, minimum=1),
            docker_timeout_seconds=_strict_int(env, "WC_DOCKER_TIMEOUT", 30, minimum=1),
            docker_concurrency=_strict_int(env, "WC_DOCKER_CONCURRENCY", 4, minimum=1),
            pull_window_seconds=_strict_int(env, "WC_PULL_WINDOW", 30, minimum=0),
            sweep_interval_seconds=_strict_int(env, "WC_SWEEP_INTERVAL", 60, minimum=1),
            sweep_grace_seconds=_strict_int(env, "WC_SWEEP_GRACE", 300, minimum=0),
            sweep_dry_run=_strict_bool(env, "WC_SWEEP_DRY_RUN", default=False),
            image_gc_after_seconds=_strict_int(env, "WC_IMAGE_GC_AFTER", 0, minimum=0),
            image_gc_interval_seconds=_strict_int(env, "WC_IMAGE_GC_INTERVAL", 60, minimum=1),
            crashloop_restarts=_strict_int(env, "WC_CRASHLOOP_RESTARTS", 5, minimum=1),
            crashloop_window_seconds=_strict_int(env, "WC_CRASHLOOP_WINDOW", 300, minimum=1),
            known_runtimes=known_runtimes,
            runtime_images=runtime_images,
            docker_host=env.get("DOCKER_HOST") or None,
            local_host=_host_name(env.get("WC_LOCAL_HOST", DEFAULT_LOCAL_HOST)),
            host_selector=_selector(env, "WC_HOST_SELECTOR"),
            workspace_selector=_selector(env, "WC_WORKSPACE_SELECTOR"),
            leader_elect=leader_elect,
            lease_name=lease_name,
            lease_namespace=lease_namespace,
            identity=identity,
            lease_duration_seconds=lease_duration,
            renew_deadline_seconds=renew_deadline,
            retry_period_seconds=retry_period,
            metrics_port=_strict_int(env, "WC_METRICS_PORT", 8080, minimum=0),
            metrics_addr=env.get("WC_METRICS_ADDR") or "127.0.0.1",
            # Set-but-empty turns kopf's liveness endpoint off.
            liveness=env.get("WC_LIVENESS", "http://127.0.0.1:8081/healthz"),
            log_format=_strict_choice(env, "WC_LOG_FORMAT", _LOG_FORMATS, "text"),
            log_level=_strict_choice(env, "WC_LOG_LEVEL", _LOG_LEVELS, "INFO", upper=True),
        )


def _runtime_names(raw: str, variable: str) -> list[str]:
    names = [name.strip() for name in raw.split(",") if name.strip()]
    for name in names:
        if not re.fullmatch(RUNTIME_PATTERN, name):
            raise ValueError(f"{variable}: {name!r} is not a runtime name (lower-case letters, digits, '-')")
    return names


def _runtime_images(raw: str) -> dict[str, str]:
    """`runtime=image,runtime=image`: the admin's images for runtimes, new ones or the nine."""
    images: dict[str, str] = {}
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        runtime, equals, image = (s.strip() for s in entry.partition("="))
        if not equals or not image or any(c.isspace() for c in image):
            raise ValueError(f"WC_RUNTIME_IMAGES: {entry!r} is not runtime=image")
        if not re.fullmatch(RUNTIME_PATTERN, runtime):
            raise ValueError(
                f"WC_RUNTIME_IMAGES: {runtime!r} is not a runtime name (lower-case letters, digits, '-')"
            )
        images[runtime] = image
    return images


def _selector(env: Mapping[str, str], name: str) -> LabelSelector | None:
    raw = env.get(name, "")
    if not raw.strip():
        return None
    try:
        return parse_selector(raw)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _strict_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (value > 0 and value < float("inf")):
        raise ValueError(f"{name} must be a number of seconds above 0; got {raw!r}")
    return value


def _host_name(value: str) -> str:
    if value and not _HOST_NAME_PATTERN.fullmatch(value):
        raise ValueError(f"WC_LOCAL_HOST must be empty or a DockerHost name (a DNS subdomain); got {value!r}")
    return value


def tier_limits_from_env(env: Mapping[str, str]) -> dict[int, TierLimits]:
    """TIER{1,2,3,4}_MEMORY_MB, _CPU_SHARES and _PIDS_LIMIT, each used only when it is an int64 above 0.

    The tier 2-4 memory and CPU variables are the Go provisioner's; the tier 1 ones and the pids limits
    are new, and follow the same forgiving rule.
    """
    limits: dict[int, TierLimits] = {}
    for tier, default in DEFAULT_TIER_LIMITS.items():
        limits[tier] = TierLimits(
            memory_mb=_lenient_positive_int(env.get(f"TIER{tier}_MEMORY_MB"), default.memory_mb),
            cpu_shares=_lenient_positive_int(env.get(f"TIER{tier}_CPU_SHARES"), default.cpu_shares),
            pids_limit=_lenient_positive_int(env.get(f"TIER{tier}_PIDS_LIMIT"), default.pids_limit),
        )
    return limits


def _lenient_positive_int(raw: str | None, default: int) -> int:
    # Mirrors Go's strconv.ParseInt(v, 10, 64) followed by `n > 0`: no spaces or underscores, int64 range.
    if raw is None or not _GO_INT.fullmatch(raw):
        return default
    value = int(raw)
    return value if 0 < value <= _INT64_MAX else default


def _strict_int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not _GO_INT.fullmatch(raw) or int(raw) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {raw!r}")
    return int(raw)


def _strict_choice(
    env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str, *, upper: bool = False
) -> str:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    value = raw.upper() if upper else raw
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {raw!r}")
    return value


def _strict_bool(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"{name} must be one of true/false, 1/0, yes/no, on/off; got {env[name]!r}")
