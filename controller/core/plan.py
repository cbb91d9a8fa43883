"""The desired Docker objects of a workspace: a pure function of its spec, resolved inputs and settings.

``plan_workspace`` never talks to Docker or Kubernetes. The caller resolves what lives in other objects
(Secret and ConfigMap values, the auth token, pull secrets) into ``ResolvedInputs`` first, so the plan is
reproducible: the same inputs give the same plan and the same ``config_hash``.

``config_hash`` is a SHA-256 over exactly what the runtime receives at create (the whole ``ContainerSpec``
but its own hash label, the digests and modes of the files written before start) plus the two requests
to recreate (restartRequestedAt, the session reset token). Nothing is listed by hand: a field added to
``ContainerSpec`` is hashed, so a change to it always replaces the container. The hash is stored as a
container label, so a reconcile tells "up to date" from "replace" without diffing Docker's
configuration field by field. Secret values enter it only through a digest, never as text.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.api.workspace import (
    ImageUpdate,
    Network,
    PullPolicy,
    WorkspaceSpec,
    WritePolicy,
    host_path_problem,
    workspace_access_problem,
)
from controller.core import labels as labelling
from controller.core import mounts, naming, readiness
from controller.core.causes import Cause, Reason
from controller.core.configfiles import AuthTokenFile, config_tree, merge_config_files
from controller.core.env import build_container_env
from controller.core.identity import WorkspaceRef
from controller.core.images import registry_auth_for, select_image
from controller.core.isolation import (
    AGENT_ALIAS,
    NO_FILES,
    UNROUTED_DNS,
    GatewayPlan,
    agent_proxy_env,
    gateway_container,
    internal_network_name,
    is_isolated,
    tier_message,
)
from controller.core.policy import DEFAULT_GRANT, Grant
from controller.core.tiers import tier_host_config
from controller.port.values import ContainerSpec, FileTree, PortBinding, RegistryCredentials
from controller.settings import ControllerSettings

CONFIG_HASH_SCHEME = "v2"
RESTART_POLICY = "unless-stopped"
AGENT_PORT_SPEC = f"{naming.AGENT_PORT}/tcp"
HOST_NETWORK_MODE = "host"


@dataclass(frozen=True)
class ResolvedInputs:
    """Values the caller read from other Kubernetes objects.

    env: spec.envFrom and spec.env as (name, value) (`core.env.expand_env_from`); optional references
        that were missing are left out.
    config_maps: the data of spec.config.fromConfigMaps in spec order (``binaryData`` decoded to bytes);
        a missing optional ConfigMap is an empty mapping.
    auth_token: the workspace's bearer token (spec.authToken's Secret, or the controller-owned one when
        it asks to generate one); empty when spec.authToken is unset.
    auth_token_secret: the name of the Secret it came from (reported in the status).
    pull_secrets: parsed ``.dockerconfigjson`` documents of spec.imagePullSecrets, in spec order.
    secret_values: the values read from Secrets (env, token, registry credentials), for redaction.
    """

    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    skipped_env: tuple[str, ...] = ()
    """spec.envFrom keys left out, and why (names only, never values)."""
    config_maps: tuple[Mapping[str, str | bytes], ...] = field(default=(), repr=False)
    auth_token: str = field(default="", repr=False)
    auth_token_secret: str = ""
    pull_secrets: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)
    secret_values: frozenset[str] = field(default=frozenset(), repr=False)
    """Every value read from a Secret (env values, the token, registry credentials): never to be
    written into a message (`core.redact`)."""


@dataclass(frozen=True)
class VolumePlan:
    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class ContainerPlan:
    workspace: WorkspaceRef
    container: ContainerSpec
    """What the runtime is told at create; its labels carry `config_hash`."""
    files: FileTree
    """/configs, written into the created container before it starts."""
    volumes: tuple[VolumePlan, ...]
    image_pull_policy: PullPolicy | None
    pull_credentials: RegistryCredentials | None = field(repr=False)
    config_hash: str
    # http://ws-<id12>:8000 on the workspace network; None for tier 4, which joins no network.
    internal_url: str | None
    # Known without inspecting the container (tier 4: the host's port 8000); otherwise read from the
    # ephemeral port binding Docker chose.
    fixed_endpoint: str | None
    session_volume: str | None
    session_reset_token: str | None
    restart_requested_at: str | None
    auth_token_secret: str
    """The Secret the token in /configs came from (reported in the status, never hashed by name)."""
    secret_values: frozenset[str] = field(default=frozenset(), repr=False)
    """Values read from Secrets, to be redacted from any message (`core.redact`)."""
    skipped_env: tuple[str, ...] = ()
    """spec.envFrom keys that were left out (a Warning says so when the container is created)."""
    adopt: bool = False
    """spec.adopt: the Go provisioner's container and volumes of this workspace ID may be taken over."""
    progress_deadline_seconds: int = 600
    """spec.progressDeadlineSeconds (`core.progress`)."""
    start_first: bool = False
    """spec.updateStrategy StartFirst, where two containers can run at once (not on the host network,
    whose port 8000 only one can hold). Not in the config hash: it changes how, not what, runs."""
    image_update: ImageUpdate | None = None
    """spec.imageUpdate (`core.image_refresh`); not in the config hash: it changes when the image is
    checked, not what runs."""
    readiness: str | None = None
    """spec.readiness as messages name it (`GET http://127.0.0.1:8000/ready`); None: the image's check."""
    gateway: GatewayPlan | None = None
    """The isolated agent's gateway (`core.isolation`); None when the agent is not isolated."""

    @property
    def name(self) -> str:
        return self.container.name

    @property
    def image(self) -> str:
        return self.container.image


def plan_workspace(
    workspace: WorkspaceRef,
    spec: WorkspaceSpec,
    resolved: ResolvedInputs,
    settings: ControllerSettings,
    grant: Grant = DEFAULT_GRANT,
) -> ContainerPlan | Cause:
    """The plan, or the Cause (reported as Stalled) that keeps the spec from becoming a container.

    `grant` is what the Workspace's namespace may use; the caller has checked the spec against it
    (`policy.policy_denial`). What the spec cannot ask for follows from it here: tier 4 gets the Docker
    socket only where a grant allows it.
    """
    image = select_image(spec, settings)
    if isinstance(image, Cause):
        return image

    mount = spec.workspace
    # The models enforce these; checked again so that a spec built without validation cannot bypass them.
    problem = workspace_access_problem(mount.access, mount.host_path)
    if problem is None and mount.host_path and mount.access != "none":
        problem = host_path_problem(mount.host_path)
    if problem:
        return Cause(Reason.INVALID_SPEC, problem)

    # The spec says which ID names everything (the validated copy of what the ref was read from).
    workspace = dataclasses.replace(workspace, platform_id=spec.workspace_id or "")
    workspace_id = workspace.workspace_id
    tier = tier_host_config(spec.tier, settings.tier_limits)
    try:
        env = build_container_env(
            workspace_id=workspace_id,
            platform_url=spec.platform_url or settings.platform_url,
            tier=spec.tier,
            awareness=(spec.awareness.namespace, spec.awareness.url) if spec.awareness else None,
            user_env=resolved.env,
        )
    except ValueError as error:
        return Cause(Reason.INVALID_SPEC, str(error))

    token = None
    if spec.auth_token is not None:
        # The platform's Secret wins at every create; a generated token never replaces the agent's own.
        policy: WritePolicy = "Always" if spec.auth_token.secret_ref is not None else "IfNotPresent"
        token = AuthTokenFile(resolved.auth_token, policy)
    files = merge_config_files(resolved.config_maps, spec.config, token)
    if isinstance(files, Cause):
        return files

    # The deletion policy is on the container too (so in the hash): a policy change recreates the
    # container, keeping the label the orphan sweep reads true. Volume labels cannot change; the sweep
    # reads the container's.
    owner_labels = labelling.workspace_labels(settings.instance, workspace, spec.deletion_policy)
    uses_session = mounts.uses_session_volume(spec.runtime, tier)
    workspace_volume = naming.workspace_volume_of(workspace)
    volumes = [VolumePlan(naming.config_volume_name(workspace_id), owner_labels)]
    if mounts.uses_workspace_volume(mount.host_path, mount.access, tier):
        volumes.append(VolumePlan(workspace_volume, owner_labels))
    if uses_session:
        volumes.append(VolumePlan(naming.session_volume_name(workspace_id), owner_labels))

    name = naming.container_name(workspace_id)
    on_network = not tier.host_network
    isolated = is_isolated(spec.network)
    if isolated and (not on_network or tier.privileged or tier.pid_mode):
        # Privileged with the host's processes, an agent can enter the host's network namespace.
        return Cause(Reason.INVALID_SPEC, tier_message(spec.tier))
    if isolated and spec.network is not None:
        env = env + tuple(f"{key}={value}" for key, value in agent_proxy_env(spec.network))
    # An isolated agent is alone on its internal network (the gateway answers for its name and port).
    network = internal_network_name(name) if isolated else settings.network
    container = ContainerSpec(
        name=name,
        image=image,
        platform=settings.image_platform or None,
        env=env,
        labels=owner_labels,
        exposed_port=AGENT_PORT_SPEC,
        # Loopback only, ephemeral host port: the agent is never exposed beyond the Docker host.
        port_bindings=(PortBinding(AGENT_PORT_SPEC, naming.LOOPBACK),) if on_network and not isolated else (),
        restart_policy=RESTART_POLICY,
        network=network if on_network else None,
        aliases=((name, AGENT_ALIAS) if isolated else (name,)) if on_network else (),
        binds=mounts.container_binds(
            workspace_id,
            runtime=spec.runtime,
            tier=tier,
            host_path=mount.host_path,
            access=mount.access,
            docker_socket=grant.docker_socket,
            workspace_volume=workspace_volume,
        ),
        read_only_rootfs=tier.read_only_rootfs,
        tmpfs=dict(tier.tmpfs),
        memory=tier.memory_bytes,
        nano_cpus=tier.nano_cpus,
        privileged=tier.privileged,
        pid_mode=tier.pid_mode,
        cap_drop=tier.cap_drop,
        cap_add=tier.cap_add,
        security_opt=tier.security_opt,
        pids_limit=tier.pids_limit,
        # Naming the network (as `docker run --network` does) rather than "default" keeps the container off
        # the default bridge.
        network_mode=network if on_network else HOST_NETWORK_MODE,
        health_check=readiness.health_check(spec.readiness),
        runtime=spec.container_runtime,
        network_internal=True if isolated else None,
        # Names beyond its network go nowhere: a daemon before Docker 23.0.11, 25.0.5 or 26.0 forwards
        # an internal network's DNS queries from the host (CVE-2024-29018), a way out by name lookups.
        dns=(UNROUTED_DNS,) if isolated else None,
    )
    config = config_tree(files)
    session_reset_token = spec.session.reset_requested_at if uses_session else None
    config_hash = compute_config_hash(container, config, spec.restart_requested_at, session_reset_token)
    gateway = None
    if isolated and spec.network is not None:
        gateway = _gateway_plan(name, spec.network, owner_labels, settings)
    return ContainerPlan(
        gateway=gateway,
        workspace=workspace,
        container=dataclasses.replace(
            container, labels=labelling.with_config_hash(container.labels, config_hash)
        ),
        files=config,
        volumes=tuple(volumes),
        image_pull_policy=spec.image_pull_policy,
        pull_credentials=registry_auth_for(image, resolved.pull_secrets),
        config_hash=config_hash,
        internal_url=naming.internal_url(workspace_id) if on_network else None,
        fixed_endpoint=None if on_network else naming.host_network_endpoint(),
        session_volume=naming.session_volume_name(workspace_id) if uses_session else None,
        session_reset_token=session_reset_token,
        restart_requested_at=spec.restart_requested_at,
        auth_token_secret=resolved.auth_token_secret,
        secret_values=resolved.secret_values | {resolved.auth_token} - {""},
        skipped_env=resolved.skipped_env,
        adopt=spec.adopt,
        progress_deadline_seconds=spec.progress_deadline_seconds,
        readiness=readiness.describe(spec.readiness) if spec.readiness is not None else None,
        image_update=spec.image_update,
        # Isolated: one agent on its internal network (the gateway's upstream is the agent's alias there).
        start_first=spec.update_strategy == "StartFirst" and on_network and not isolated,
    )


def _gateway_plan(
    agent: str, network: Network, owner_labels: Mapping[str, str], settings: ControllerSettings
) -> GatewayPlan:
    container = gateway_container(
        agent,
        network,
        workspace_network=settings.network,
        image=settings.gateway_image,
        labels=owner_labels,
        restart_policy=RESTART_POLICY,
    )
    config_hash = compute_config_hash(container, NO_FILES, None, None)
    return GatewayPlan(
        container=dataclasses.replace(
            container, labels=labelling.with_config_hash(container.labels, config_hash)
        ),
        internal_network=internal_network_name(agent),
        config_hash=config_hash,
    )


OPTIONAL_CONTAINER_FIELDS = ("health_check", "runtime", "network_internal", "entrypoint", "dns")
"""ContainerSpec fields added after the hash scheme: hashed only when set, so that an upgrade of the
controller does not change the hash of (and so recreate) a container that does not use them."""


def compute_config_hash(
    container: ContainerSpec,
    files: FileTree,
    restart_requested_at: str | None,
    session_reset_token: str | None,
) -> str:
    """SHA-256 over a canonical JSON of what the runtime receives at create, and the recreate requests.

    Every field of ``container`` is in it (but the config-hash label, which holds the result); files enter
    as SHA-256 digests with their modes. A file written only when absent enters without its content: an
    edit of it in the spec does not restart an agent whose volume keeps its own copy. Pull policy and
    credentials are not in it (they change how the image is fetched, not what runs), nor are volumes
    (their names follow from the binds).
    """
    spec = _plain(container)
    for optional in OPTIONAL_CONTAINER_FIELDS:
        if spec.get(optional) is None:
            spec.pop(optional, None)  # unset, as before the field existed: no recreate on upgrade
    unhashed = {labelling.CONFIG_HASH_LABEL}
    if labelling.SLOT_LABEL in container.labels:
        # A warm slot's container names its pool; the Workspace bound to it names itself: the same
        # container either way (only ever with the slot label, so no other container's hash moves).
        unhashed.add(labelling.NAME_LABEL)
    spec["labels"] = {k: v for k, v in container.labels.items() if k not in unhashed}
    material = {
        "scheme": CONFIG_HASH_SCHEME,
        "container": spec,
        "files": {
            "root": files.root,
            "entries": {
                path: [None if file.if_absent else hashlib.sha256(file.content).hexdigest(), file.mode]
                + (["IfNotPresent"] if file.if_absent else [])
                for path, file in files.files.items()
            },
        },
        "restartRequestedAt": restart_requested_at,
        "sessionResetRequestedAt": session_reset_token,
    }
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    """Dataclasses, mappings and tuples as JSON's objects and arrays, all the way down."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def needs_session_reset(plan: ContainerPlan, last_reset_handled: str | None) -> bool:
    """Whether the session volume must be emptied before the container is recreated (once per token).

    Only a plan that mounts a session volume (claude-code, tier 2 and up) can need it.
    """
    token = plan.session_reset_token
    return bool(token) and token != last_reset_handled
