"""Which image a workspace runs, when and with which credentials to pull it, and what a missing one means."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.api.workspace import PullPolicy, WorkspaceSpec
from controller.core.conditions import Reason
from controller.settings import ControllerSettings

DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
# Tags whose content changes at the registry on every publish; a cached copy may be stale.
MOVING_TAGS = frozenset({"", "latest", "staging", "main", "dev", "edge", "nightly", "rolling"})
_DIGEST_MARKER = "@sha256:"
_TEMPLATE_PREFIX = "workspace-template-"
_LEGACY_TEMPLATE_PREFIX = "workspace-template:"


@dataclass(frozen=True)
class UnknownRuntime:
    """spec.runtime names no known runtime and spec.image is unset: nothing to run."""

    runtime: str
    known: tuple[str, ...]
    reason: str = Reason.UNKNOWN_RUNTIME

    @property
    def message(self) -> str:
        return (
            f"spec.runtime {self.runtime!r} is not a known runtime ({', '.join(self.known)}); "
            "set spec.image to run a custom image"
        )


def runtime_image(prefix: str, runtime: str, known: Sequence[str]) -> str:
    """``<prefix>/workspace-template-<runtime>:latest``, or "" for an unknown runtime."""
    if runtime not in known:
        return ""
    return f"{prefix}/{_TEMPLATE_PREFIX}{runtime}:latest"


def runtime_images(prefix: str, known: Sequence[str]) -> dict[str, str]:
    """The image of every known runtime under ``prefix``."""
    return {runtime: runtime_image(prefix, runtime, known) for runtime in known}


def select_image(spec: WorkspaceSpec, settings: ControllerSettings) -> str | UnknownRuntime:
    """spec.image when set, else the runtime's image.

    Unlike the Go provisioner, an unknown runtime does not silently fall back to the langgraph image:
    running a different agent than the one asked for is worse than reporting the mistake.
    """
    if spec.image:
        return spec.image
    image = runtime_image(settings.registry_prefix, spec.runtime, settings.known_runtimes)
    return image or UnknownRuntime(runtime=spec.runtime, known=settings.known_runtimes)


def image_tag(ref: str) -> str:
    """The tag of an image reference, "" when it has none (a ':' followed by a '/' is a registry port)."""
    colon = ref.rfind(":")
    if colon < 0 or "/" in ref[colon + 1 :]:
        return ""
    return ref[colon + 1 :]


def is_moving_tag(ref: str) -> bool:
    """True when a locally cached copy of ``ref`` may be stale (the Go provisioner's imageTagIsMoving)."""
    if _DIGEST_MARKER in ref:
        return False
    return image_tag(ref) in MOVING_TAGS


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


def registry_host(image: str) -> str:
    """The registry an image reference is pulled from; Docker Hub when the first component is not a host."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return _normalise_registry(first)
    return DOCKER_HUB


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


def looks_like_image_not_found(error_text: str) -> bool:
    """Whether a daemon error means a missing image: there is no typed error for it, only its text."""
    text = error_text.lower()
    return "no such image" in text or ("not found" in text and "image" in text)


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one registry, as docker-py's ``pull(auth_config=...)`` takes them."""

    serveraddress: str
    username: str = ""
    password: str = field(default="", repr=False)
    identitytoken: str = field(default="", repr=False)

    def as_auth_config(self) -> dict[str, str]:
        config = {"serveraddress": self.serveraddress}
        if self.identitytoken:
            config["identitytoken"] = self.identitytoken
        else:
            config["username"] = self.username
            config["password"] = self.password
        return config


def registry_auth_for(image: str, docker_configs: Sequence[Mapping[str, Any]]) -> RegistryAuth | None:
    """The first credentials for the image's registry found in parsed ``.dockerconfigjson`` documents.

    Documents are searched in spec.imagePullSecrets order; entries that cannot be decoded are skipped.
    """
    registry = registry_host(image)
    for document in docker_configs:
        auths = document.get("auths")
        if not isinstance(auths, Mapping):
            continue
        for key, entry in auths.items():
            if not isinstance(key, str) or not isinstance(entry, Mapping):
                continue
            if _normalise_registry(key) != registry:
                continue
            auth = _decode_auth_entry(registry, entry)
            if auth is not None:
                return auth
    return None


def _decode_auth_entry(registry: str, entry: Mapping[str, Any]) -> RegistryAuth | None:
    identity = entry.get("identitytoken")
    if isinstance(identity, str) and identity:
        return RegistryAuth(serveraddress=registry, identitytoken=identity)
    username, password = entry.get("username"), entry.get("password")
    if isinstance(username, str) and isinstance(password, str) and username:
        return RegistryAuth(serveraddress=registry, username=username, password=password)
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, colon, secret = decoded.partition(":")
        if colon and user:
            return RegistryAuth(serveraddress=registry, username=user, password=secret)
    return None


def _normalise_registry(key: str) -> str:
    """``https://index.docker.io/v1/`` → ``docker.io``; ``https://reg:5000/path`` → ``reg:5000``."""
    host = key.strip()
    for scheme in ("https://", "http://"):
        if host.lower().startswith(scheme):
            host = host[len(scheme) :]
    host = host.split("/", 1)[0].lower()
    return DOCKER_HUB if host in _DOCKER_HUB_ALIASES else host
