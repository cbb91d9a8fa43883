"""The desired Docker objects of a workspace: a pure function of its spec, resolved inputs and settings.

``plan_workspace`` never talks to Docker or Kubernetes. The caller resolves what lives in other objects
(Secret and ConfigMap values, the auth token, pull secrets) into ``ResolvedInputs`` first, so the plan is
reproducible: the same inputs give the same plan and the same ``config_hash``.

``config_hash`` covers everything that can only change by recreating the container. It is stored as a
container label, so the adapter can tell an up-to-date container from a stale one without comparing
configurations field by field. Secret values enter it only through a SHA-256 digest, never as text.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from controller.api.workspace import PullPolicy, WorkspaceSpec, host_path_problem, workspace_access_problem
from controller.core import labels as labelling
from controller.core import mounts, naming
from controller.core.conditions import Reason
from controller.core.configfiles import ConfigFilesError, build_tar, merge_config_files
from controller.core.env import build_container_env
from controller.core.images import RegistryAuth, UnknownRuntime, registry_auth_for, select_image
from controller.core.tiers import tier_host_config
from controller.settings import ControllerSettings

CONFIG_HASH_SCHEME = "v1"
RESTART_POLICY = "unless-stopped"
AGENT_PORT_SPEC = f"{naming.AGENT_PORT}/tcp"
HOST_NETWORK_MODE = "host"


@dataclass(frozen=True)
class ResolvedInputs:
    """Values the caller read from other Kubernetes objects.

    env: spec.env as (name, value), in spec order; optional references that were missing are left out.
    config_maps: the data of spec.config.fromConfigMaps in spec order (``binaryData`` decoded to bytes);
        missing optional ConfigMaps are left out.
    auth_token: the workspace's bearer token (from spec.authToken's Secret or the controller-owned one).
    pull_secrets: parsed ``.dockerconfigjson`` documents of spec.imagePullSecrets, in spec order.
    """

    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    config_maps: tuple[Mapping[str, str | bytes], ...] = field(default=(), repr=False)
    auth_token: str = field(default="", repr=False)
    pull_secrets: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class PlanError:
    """The spec (or what it refers to) cannot be turned into a container: report it as Stalled."""

    reason: str
    message: str


@dataclass(frozen=True)
class PortBinding:
    container_port: str
    host_ip: str
    host_port: str = ""


@dataclass(frozen=True)
class VolumePlan:
    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class ContainerPlan:
    workspace: labelling.WorkspaceRef
    name: str
    image: str
    platform: str | None
    image_pull_policy: PullPolicy | None
    pull_auth: RegistryAuth | None = field(repr=False)
    env: tuple[str, ...] = field(repr=False)
    labels: Mapping[str, str]
    exposed_port: str
    port_bindings: tuple[PortBinding, ...]
    restart_policy: str
    network: str | None
    aliases: tuple[str, ...]
    binds: tuple[str, ...]
    read_only_rootfs: bool
    tmpfs: Mapping[str, str]
    memory: int
    nano_cpus: int
    privileged: bool
    pid_mode: str | None
    network_mode: str
    volumes: tuple[VolumePlan, ...]
    config_files: Mapping[str, bytes] = field(repr=False)
    config_hash: str
    # http://ws-<id12>:8000 on the workspace network; None for tier 4, which joins no network.
    internal_url: str | None
    # Known without inspecting the container (tier 4: the host's port 8000); otherwise read from the
    # ephemeral port binding Docker chose.
    fixed_endpoint: str | None
    session_volume: str | None
    session_reset_token: str | None
    restart_requested_at: str | None

    def config_tar(self) -> bytes:
        """The /configs contents as a tar, to copy into the config volume before the container starts."""
        return build_tar(self.config_files)


def plan_workspace(
    uid: str,
    namespace: str,
    name: str,
    spec: WorkspaceSpec,
    resolved: ResolvedInputs,
    settings: ControllerSettings,
) -> ContainerPlan | PlanError:
    image = select_image(spec, settings)
    if isinstance(image, UnknownRuntime):
        return PlanError(image.reason, image.message)

    mount = spec.workspace
    # The models enforce these; checked again so that a spec built without validation cannot bypass them.
    problem = workspace_access_problem(mount.access, mount.host_path)
    if problem is None and mount.host_path and mount.access != "none":
        problem = host_path_problem(mount.host_path)
    if problem:
        return PlanError(Reason.INVALID_SPEC, problem)

    tier = tier_host_config(spec.tier, settings.tier_limits)
    try:
        env = build_container_env(
            workspace_id=uid,
            platform_url=spec.platform_url or settings.platform_url,
            tier=spec.tier,
            awareness=(spec.awareness.namespace, spec.awareness.url) if spec.awareness else None,
            user_env=resolved.env,
        )
    except ValueError as error:
        return PlanError(Reason.INVALID_SPEC, str(error))

    files = merge_config_files(resolved.config_maps, spec.config.files, resolved.auth_token)
    if isinstance(files, ConfigFilesError):
        return PlanError(files.reason, files.message)

    owner = labelling.WorkspaceRef(uid=uid, namespace=namespace, name=name)
    volume_labels = {
        **labelling.workspace_labels(settings.instance, uid, namespace, name),
        # On the container too (so in the hash): a policy change recreates the container, keeping the
        # label the orphan sweep reads true. Volume labels cannot change; the sweep reads the container's.
        labelling.DELETION_POLICY_LABEL: spec.deletion_policy,
    }
    uses_session = mounts.uses_session_volume(spec.runtime, tier)
    volumes = [VolumePlan(naming.config_volume_name(uid), volume_labels)]
    if mounts.uses_workspace_volume(mount.host_path, mount.access, tier):
        volumes.append(VolumePlan(naming.workspace_volume_name(uid), volume_labels))
    if uses_session:
        volumes.append(VolumePlan(naming.session_volume_name(uid), volume_labels))

    container = naming.container_name(uid)
    on_network = not tier.host_network
    unhashed = ContainerPlan(
        workspace=owner,
        name=container,
        image=image,
        platform=settings.image_platform or None,
        image_pull_policy=spec.image_pull_policy,
        pull_auth=registry_auth_for(image, resolved.pull_secrets),
        env=env,
        labels=volume_labels,
        exposed_port=AGENT_PORT_SPEC,
        # Loopback only, ephemeral host port: the agent is never exposed beyond the Docker host.
        port_bindings=(PortBinding(AGENT_PORT_SPEC, naming.LOOPBACK),) if on_network else (),
        restart_policy=RESTART_POLICY,
        network=settings.network if on_network else None,
        aliases=(container,) if on_network else (),
        binds=mounts.container_binds(
            uid, runtime=spec.runtime, tier=tier, host_path=mount.host_path, access=mount.access
        ),
        read_only_rootfs=tier.read_only_rootfs,
        tmpfs=dict(tier.tmpfs),
        memory=tier.memory_bytes,
        nano_cpus=tier.nano_cpus,
        privileged=tier.privileged,
        pid_mode=tier.pid_mode,
        # Naming the network (as `docker run --network` does) rather than "default" keeps the container off
        # the default bridge.
        network_mode=settings.network if on_network else HOST_NETWORK_MODE,
        volumes=tuple(volumes),
        config_files=files,
        config_hash="",
        internal_url=naming.internal_url(uid) if on_network else None,
        fixed_endpoint=None if on_network else naming.host_network_endpoint(),
        session_volume=naming.session_volume_name(uid) if uses_session else None,
        session_reset_token=spec.session.reset_requested_at if uses_session else None,
        restart_requested_at=spec.restart_requested_at,
    )
    config_hash = compute_config_hash(unhashed)
    return dataclasses.replace(
        unhashed,
        config_hash=config_hash,
        labels={
            **labelling.container_labels(settings.instance, uid, namespace, name, config_hash),
            labelling.DELETION_POLICY_LABEL: spec.deletion_policy,
        },
    )


def compute_config_hash(plan: ContainerPlan) -> str:
    """SHA-256 over a canonical JSON of everything in ``plan`` whose change requires a new container.

    restartRequestedAt and (claude-code) session.resetRequestedAt are in it on purpose: both are requests
    to recreate the container. Pull policy and credentials are not (they change how the image is fetched,
    not what runs), nor is anything derived from what is hashed (volumes, URLs). The config-hash label is
    left out, since it holds the result.
    """
    material = {
        "scheme": CONFIG_HASH_SCHEME,
        "name": plan.name,
        "image": plan.image,
        "platform": plan.platform,
        "env": list(plan.env),
        "labels": {k: v for k, v in plan.labels.items() if k != labelling.CONFIG_HASH_LABEL},
        "exposedPort": plan.exposed_port,
        "portBindings": [[b.container_port, b.host_ip, b.host_port] for b in plan.port_bindings],
        "restartPolicy": plan.restart_policy,
        "network": plan.network,
        "aliases": list(plan.aliases),
        "binds": list(plan.binds),
        "readOnlyRootfs": plan.read_only_rootfs,
        "tmpfs": dict(plan.tmpfs),
        "memory": plan.memory,
        "nanoCpus": plan.nano_cpus,
        "privileged": plan.privileged,
        "pidMode": plan.pid_mode,
        "networkMode": plan.network_mode,
        "files": {path: hashlib.sha256(content).hexdigest() for path, content in plan.config_files.items()},
        "restartRequestedAt": plan.restart_requested_at,
        "sessionResetRequestedAt": plan.session_reset_token,
    }
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def needs_session_reset(plan: ContainerPlan, last_reset_handled: str | None) -> bool:
    """Whether the session volume must be emptied before the container is recreated (once per token).

    Only a plan that mounts a session volume (claude-code, tier 2 and up) can need it.
    """
    token = plan.session_reset_token
    return bool(token) and token != last_reset_handled


class DockerCreateKwargs(TypedDict):
    """Keyword arguments for docker-py's low-level ``APIClient`` (docker 7.1)::

    host_config = api.create_host_config(**kwargs["host_config"])
    endpoints = {net: api.create_endpoint_config(**kw) for net, kw in kwargs["endpoints_config"].items()}
    networking = api.create_networking_config(endpoints) if endpoints else None
    api.create_container(**kwargs["container"], host_config=host_config, networking_config=networking)
    """

    container: dict[str, Any]
    host_config: dict[str, Any]
    endpoints_config: dict[str, dict[str, Any]]


def to_docker_create_kwargs(plan: ContainerPlan) -> DockerCreateKwargs:
    port, _, protocol = plan.exposed_port.partition("/")
    container: dict[str, Any] = {
        "image": plan.image,
        "name": plan.name,
        "detach": True,
        "environment": list(plan.env),
        "labels": dict(plan.labels),
        # docker-py turns (port, protocol) into "8000/tcp"; the string form would become "8000/tcp/tcp".
        "ports": [(int(port), protocol or "tcp")],
    }
    if plan.platform:
        container["platform"] = plan.platform
    host_config: dict[str, Any] = {
        "binds": list(plan.binds),
        "restart_policy": {"Name": plan.restart_policy},
        "read_only": plan.read_only_rootfs,
        "privileged": plan.privileged,
        "network_mode": plan.network_mode,
    }
    if plan.port_bindings:
        # docker-py refuses port bindings together with network_mode "host", so they are only set here.
        bindings: dict[str, list[dict[str, str]]] = {}
        for binding in plan.port_bindings:
            bindings.setdefault(binding.container_port, []).append(
                {"HostIp": binding.host_ip, "HostPort": binding.host_port}
            )
        host_config["port_bindings"] = bindings
    if plan.tmpfs:
        host_config["tmpfs"] = dict(plan.tmpfs)
    if plan.memory:
        host_config["mem_limit"] = plan.memory
    if plan.nano_cpus:
        host_config["nano_cpus"] = plan.nano_cpus
    if plan.pid_mode:
        host_config["pid_mode"] = plan.pid_mode
    endpoints: dict[str, dict[str, Any]] = {}
    if plan.network:
        endpoints[plan.network] = {"aliases": list(plan.aliases)}
    return {"container": container, "host_config": host_config, "endpoints_config": endpoints}
