"""Which image a workspace runs, when and with which credentials to pull it, and what a missing one means."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

from controller.api.workspace import PullPolicy, WorkspaceSpec
from controller.core.causes import Cause, Reason
from controller.core.image_refs import normalise_registry, parse_image_ref, registry_host
from controller.port.values import RegistryCredentials
from controller.settings import ControllerSettings

# Tags whose content changes at the registry on every publish; a cached copy may be stale.
MOVING_TAGS = frozenset({"", "latest", "staging", "main", "dev", "edge", "nightly", "rolling"})
_TEMPLATE_PREFIX = "workspace-template-"
_LEGACY_TEMPLATE_PREFIX = "workspace-template:"


def runtime_image(
    prefix: str, runtime: str, known: Sequence[str], images: Mapping[str, str] | None = None
) -> str:
    """The admin's image for the runtime (WC_RUNTIME_IMAGES), else
    ``<prefix>/workspace-template-<runtime>:latest``; "" for an unknown runtime."""
    if images and runtime in images:
        return images[runtime]
    if runtime not in known:
        return ""
    return f"{prefix}/{_TEMPLATE_PREFIX}{runtime}:latest"


def select_image(spec: WorkspaceSpec, settings: ControllerSettings) -> str | Cause:
    """spec.image when set, else the runtime's image; an unknown runtime without spec.image is a Cause.

    Unlike the Go provisioner, an unknown runtime does not silently fall back to the langgraph image:
    running a different agent than the one asked for is worse than reporting the mistake.
    """
    if spec.image:
        return spec.image
    image = runtime_image(
        settings.registry_prefix, spec.runtime, settings.known_runtimes, settings.runtime_images
    )
    if image:
        return image
    return Cause(
        Reason.UNKNOWN_RUNTIME,
        f"spec.runtime {spec.runtime!r} is not a known runtime ({', '.join(settings.known_runtimes)}); "
        "set spec.image to run a custom image",
    )


def is_moving_tag(ref: str) -> bool:
    """True when a locally cached copy of ``ref`` may be stale (the Go provisioner's imageTagIsMoving)."""
    parsed = parse_image_ref(ref)
    return not parsed.digest and parsed.tag in MOVING_TAGS


def should_pull(policy: PullPolicy | None, image: str, present_locally: bool) -> bool:
    """Whether to pull before creating the container.

    Always / IfNotPresent / Never mean what they mean to the kubelet. Unset is the Go provisioner's rule:
    pull when the image is missing, and re-pull a moving tag even when it is cached.
    """
    if policy == "Always":
        return True
    if policy == "Never":
        return False
    if policy == "IfNotPresent":
        return not present_locally
    return not present_locally or is_moving_tag(image)


def pulls_first(policy: PullPolicy | None, image: str) -> bool:
    """Whether the image is pulled before the create whether or not the host has it (Always, or a moving
    tag with the policy unset); otherwise the create goes first and a missing image is pulled (or, under
    Never, reported) when the create says so, so that an image already there costs no call at all.
    (Always is a pull of the Workspace's own; a moving tag may share one made within WC_PULL_WINDOW.)"""
    return policy == "Always" or (policy is None and is_moving_tag(image))


def pull_failure_tolerated(policy: PullPolicy | None, present_locally: bool) -> bool:
    """Whether a failed pull may fall through to creating the container from the cached image.

    With the policy unset this is the Go provisioner's resilience rule (a registry outage must not stop a
    restart of an image that is already on the host). An explicit Always asks for the registry's current
    image, so failing to get it is an error, as for the kubelet.
    """
    return present_locally and policy is None


def runtime_tag_from_image(image: str) -> str:
    """The runtime named by a workspace-template image, for messages.

    ``workspace-template:<rt>`` and ``…/workspace-template-<rt>:<tag>`` give ``<rt>``; anything else gives the
    text after the last ':', or the whole reference when there is nothing after it.
    """
    if image.startswith(_LEGACY_TEMPLATE_PREFIX):
        return image[len(_LEGACY_TEMPLATE_PREFIX) :]
    index = image.find(_TEMPLATE_PREFIX)
    if index >= 0:
        rest = image[index + len(_TEMPLATE_PREFIX) :]
        # Cutting at '@' as well as ':' names the runtime of a digest pin too (not "<rt>@sha256").
        return rest.split("@", 1)[0].split(":", 1)[0]
    colon = image.rfind(":")
    if 0 <= colon < len(image) - 1:
        return image[colon + 1 :]
    return image


def image_not_found_message(image: str, registry: str | None = None, detail: str = "") -> str:
    """What the user sees (in the Stalled condition) when the image cannot be found after a pull attempt.

    The Go provisioner sent this hint only to the log, and named GHCR whatever registry was configured.
    """
    registry = registry or registry_host(image)
    message = (
        f"image {image!r} (runtime {runtime_tag_from_image(image)}) was not found after a pull attempt: "
        f"check that registry {registry} serves this repository and tag, that spec.imagePullSecrets grant "
        f"access to it if it is private, and that the Docker host can reach {registry}"
    )
    return f"{message} (underlying error: {detail})" if detail else message


def image_never_pulled_message(image: str) -> str:
    return f"image {image!r} is not present on the Docker host and spec.imagePullPolicy is Never"


def registry_auth_for(image: str, docker_configs: Sequence[Mapping[str, Any]]) -> RegistryCredentials | None:
    """The first credentials for the image's registry found in parsed ``.dockerconfigjson`` documents.

    Documents are searched in spec.imagePullSecrets order; entries that cannot be decoded (bad base64,
    no ``user:password``, neither a password nor a token) are skipped. This is the one decoder of
    registry credentials: the runtime receives what it returns as is.
    """
    registry = registry_host(image)
    for document in docker_configs:
        auths = document.get("auths")
        if not isinstance(auths, Mapping):
            continue
        for key, entry in auths.items():
            if not isinstance(key, str) or not isinstance(entry, Mapping):
                continue
            if normalise_registry(key) != registry:
                continue
            auth = _decode_auth_entry(registry, entry)
            if auth is not None:
                return auth
    return None


def _decode_auth_entry(registry: str, entry: Mapping[str, Any]) -> RegistryCredentials | None:
    identity = entry.get("identitytoken")
    if isinstance(identity, str) and identity:
        return RegistryCredentials(serveraddress=registry, identitytoken=identity)
    username, password = entry.get("username"), entry.get("password")
    if isinstance(username, str) and isinstance(password, str) and username and password:
        return RegistryCredentials(serveraddress=registry, username=username, password=password)
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, colon, secret = decoded.partition(":")
        if colon and user and secret:
            return RegistryCredentials(serveraddress=registry, username=user, password=secret)
    return None
