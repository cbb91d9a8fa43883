"""What a namespace's Workspaces may ask for, and whether a Workspace asks for more: pure.

`grant_for` unites every WorkspacePolicy whose namespace selector matches a namespace's labels (grants are
additive, like RBAC) on top of the default; `policy_denial` checks a Workspace spec against that grant.
The admission policy in deploy/admission/ evaluates the same rules in CEL at `kubectl apply` time, with the
same messages: each names the rule that was not met and what a cluster admin would grant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from controller.api.policy import (
    DEFAULT_TIERS,
    HostPathGrant,
    ImageGrant,
    WorkspacePolicySpec,
)
from controller.api.workspace import WorkspaceSpec
from controller.core.causes import Cause, Reason
from controller.core.egress import covered
from controller.core.selectors import selector_matches

DIGEST_MARKER = "@sha256:"


@dataclass(frozen=True)
class Grant:
    """What one namespace may use: the default plus every policy that selects it."""

    tiers: frozenset[int] = frozenset(DEFAULT_TIERS)
    host_paths: tuple[HostPathGrant, ...] = ()
    images: tuple[ImageGrant, ...] = ()
    docker_socket: bool = False
    policies: tuple[str, ...] = ()
    """The WorkspacePolicies that contributed, by name."""
    platform_identity: bool = False
    """spec.workspaceID and spec.adopt may be used (the platform's namespaces)."""
    required_runtimes: frozenset[str] = frozenset()
    """The OCI runtimes one of which every Workspace must use (none: any)."""
    require_isolation: bool = False
    """Every Workspace must be isolated (spec.network), allow-listing only what `allowed_egress` covers."""
    allowed_egress: tuple[str, ...] = ()


DEFAULT_GRANT = Grant()


def grant_for(policies: Iterable[tuple[str, WorkspacePolicySpec]], labels: Mapping[str, str]) -> Grant:
    """The union of the default and every policy (name, spec) whose selector matches `labels`."""
    tiers = set(DEFAULT_TIERS)
    host_paths: list[HostPathGrant] = []
    images: list[ImageGrant] = []
    docker_socket = False
    platform_identity = False
    required: set[str] = set()
    require_isolation = False
    egress: list[str] = []
    names: list[str] = []
    for name, spec in sorted(policies, key=lambda item: item[0]):
        if not selector_matches(spec.namespace_selector, labels):
            continue
        names.append(name)
        tiers.update(spec.tiers)
        host_paths.extend(spec.host_paths)
        images.extend(spec.images)
        docker_socket = docker_socket or spec.docker_socket
        platform_identity = platform_identity or spec.platform_identity
        if spec.require_container_runtime:
            required.add(spec.require_container_runtime)
        require_isolation = require_isolation or spec.require_network_isolation
        egress.extend(e for e in spec.allowed_egress if e not in egress)
    return Grant(
        frozenset(tiers),
        tuple(host_paths),
        tuple(images),
        docker_socket,
        tuple(names),
        platform_identity,
        frozenset(required),
        require_isolation,
        tuple(egress),
    )


def policy_denial(
    spec: WorkspaceSpec, namespace: str, grant: Grant, default_image_prefix: str
) -> Cause | None:
    """Why `spec` asks for more than `grant` allows in `namespace` (Stalled/PolicyDenied), or None."""
    if spec.tier not in grant.tiers:
        return Cause(Reason.POLICY_DENIED, tier_message(spec.tier, namespace))
    mount = spec.workspace
    if (
        mount.host_path
        and mount.access != "none"
        and not host_path_granted(mount.host_path, mount.access, grant)
    ):
        return Cause(Reason.POLICY_DENIED, host_path_message(mount.host_path, mount.access, namespace))
    if spec.image and not image_granted(spec.image, grant, default_image_prefix):
        return Cause(Reason.POLICY_DENIED, image_message(spec.image, namespace, default_image_prefix))
    if (spec.workspace_id or spec.adopt) and not grant.platform_identity:
        return Cause(Reason.POLICY_DENIED, platform_identity_message(namespace))
    if grant.required_runtimes and spec.container_runtime not in grant.required_runtimes:
        message = runtime_message(spec.container_runtime, namespace, grant.required_runtimes)
        return Cause(Reason.POLICY_DENIED, message)
    if grant.require_isolation:
        if spec.network is None or not spec.network.isolated:
            return Cause(Reason.POLICY_DENIED, isolation_message(namespace))
        uncovered = [d for d in spec.network.allow if not covered(d, grant.allowed_egress)]
        if uncovered:
            return Cause(Reason.POLICY_DENIED, egress_message(uncovered, namespace, grant.allowed_egress))
    return None


def isolation_message(namespace: str) -> str:
    return (
        f"egress Open is not allowed in namespace {namespace}: its WorkspacePolicies require "
        "spec.network.egress None or AllowList"
    )


def egress_message(uncovered: list[str], namespace: str, allowed: tuple[str, ...]) -> str:
    may = f"it may reach {', '.join(allowed)}" if allowed else "its policies allow no destination"
    return (
        f"spec.network.allow names {', '.join(uncovered)}, not allowed in namespace {namespace} ({may}); "
        f"{_HOW} (spec.allowedEgress)"
    )


def runtime_message(runtime: str | None, namespace: str, required: frozenset[str]) -> str:
    asked = f"container runtime {runtime}" if runtime else "the host's default container runtime"
    return (
        f"{asked} is not allowed in namespace {namespace}: its WorkspacePolicies require "
        f"spec.containerRuntime {' or '.join(sorted(required))}"
    )


def host_path_granted(path: str, access: str, grant: Grant) -> bool:
    """Whether a granted root covers `path` (the root itself or below it) with at least `access`.

    Paths are compared as the schema leaves them: absolute, without '..', '//', '/./' or a trailing '/'
    (which also keeps "/" out of every grant), so a prefix comparison on whole components is exact.
    """
    for root in grant.host_paths:
        below = path == root.path or path.startswith(root.path + "/")
        if below and (root.access == "read_write" or access == "read_only"):
            return True
    return False


def image_granted(image: str, grant: Grant, default_image_prefix: str) -> bool:
    if image.startswith(default_image_prefix.rstrip("/") + "/"):
        return True
    return any(
        image.startswith(source.prefix) and (not source.digests_only or DIGEST_MARKER in image)
        for source in grant.images
    )


_HOW = "a cluster admin grants it with a WorkspacePolicy whose namespaceSelector matches this namespace"


def platform_identity_message(namespace: str) -> str:
    return (
        f"spec.workspaceID and spec.adopt are not granted to namespace {namespace}: they name and take "
        f"over the workspaces of the platform; {_HOW} (spec.platformIdentity: true)"
    )


def tier_message(tier: int, namespace: str) -> str:
    return (
        f"tier {tier} is not granted to namespace {namespace}: tiers 1 and 2 are allowed everywhere; "
        f"{_HOW} (spec.tiers: [{tier}])"
    )


def host_path_message(path: str, access: str, namespace: str) -> str:
    return (
        f"workspace.hostPath {path} ({access}) is not granted to namespace {namespace}: no host path is "
        f"allowed by default; {_HOW} (spec.hostPaths: [{{path: {path}, access: {access}}}])"
    )


def image_message(image: str, namespace: str, default_image_prefix: str) -> str:
    return (
        f"image {image} is not granted to namespace {namespace}: images under "
        f"{default_image_prefix.rstrip('/')}/ are allowed everywhere; {_HOW} (spec.images: "
        "[{prefix: <registry>/<path>/}], with digestsOnly for references pinned by @sha256 digest)"
    )
