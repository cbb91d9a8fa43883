"""What a failed runtime call means for the Workspace: retried with backoff, or Stalled. A pure rule.

1. A transient failure (the runtime or the registry did not answer, a volume still in use) is always
   retried with backoff and reported as Synced=False: the same call may succeed later without anyone
   changing anything. Only an unanswering runtime says `DockerUnavailable`, and leaves Ready Unknown.
2. A refusal of what the spec asks for is Stalled: the image does not exist or the registry refuses our
   credentials (at the pull), or the daemon refuses the configuration as invalid (HTTP 400 at create).
   Retrying the same spec cannot help; a change to the spec or a referenced object is re-evaluated at once.
3. Anything else is retried with backoff: the next pass observes afresh and may take another path (a
   container removed between observation and action is simply created again).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus

from controller.api.workspace import PullPolicy
from controller.core.causes import Cause, Reason
from controller.core.image_refs import registry_host
from controller.core.images import image_not_found_message, pull_failure_tolerated
from controller.port.errors import (
    ContainerRuntimeError,
    ImageNotFound,
    RegistryAuthFailed,
    RegistryUnavailable,
    RuntimeUnavailable,
)


class Step(StrEnum):
    """The runtime call that failed, as far as the rule cares."""

    PULL = "pull"
    CREATE = "create"
    START = "start"
    OTHER = "other"


@dataclass(frozen=True)
class Failure:
    cause: Cause
    stalled: bool
    """True: Stalled until something changes. False: retried with backoff (Synced=False)."""


def runtime_failure(error: ContainerRuntimeError, step: Step, *, container: str, image: str = "") -> Failure:
    """The verdict on `error`, raised by `step` for the container named `container` (running `image`)."""
    if isinstance(error, RuntimeUnavailable):
        return Failure(
            Cause(Reason.DOCKER_UNAVAILABLE, f"the Docker daemon is not answering: {error}"), False
        )
    if step is Step.START:
        # A container that does not start stays created; the start is retried.
        return Failure(
            Cause(Reason.RECONCILE_ERROR, f"failed to start container {container}: {error}"), False
        )
    if error.transient:
        return Failure(Cause(Reason.RECONCILE_ERROR, str(error)), False)
    if step is Step.PULL and isinstance(error, ImageNotFound):
        message = image_not_found_message(image, registry_host(image), str(error))
        return Failure(Cause(Reason.IMAGE_NOT_FOUND, message), True)
    if step is Step.CREATE and error.status_code == HTTPStatus.BAD_REQUEST:
        # e.g. more CPUs than the host has for the tier.
        message = f"the Docker daemon refused to create {container}: {error}"
        return Failure(Cause(Reason.CONTAINER_REJECTED, message), True)
    return Failure(Cause(Reason.RECONCILE_ERROR, str(error)), False)


def pull_failure(
    error: ContainerRuntimeError,
    *,
    container: str,
    image: str,
    policy: PullPolicy | None,
    present: bool,
    has_credentials: bool,
) -> Failure | None:
    """The verdict on a failed pull; None when the cached image may be used instead.

    With the policy unset, a registry that is missing the image, refuses us or does not answer does not
    stop a container whose image is already on the host (the Go provisioner's resilience rule).
    """
    registry_side = isinstance(error, ImageNotFound | RegistryAuthFailed | RegistryUnavailable)
    if registry_side and pull_failure_tolerated(policy, present):
        return None
    if isinstance(error, RegistryAuthFailed):
        hint = (
            "check the credentials in spec.imagePullSecrets"
            if has_credentials
            else "add a kubernetes.io/dockerconfigjson Secret for it to spec.imagePullSecrets"
        )
        message = f"registry {registry_host(image)} refused to serve {image}: {error}; {hint}"
        return Failure(Cause(Reason.REGISTRY_AUTH_FAILED, message), True)
    return runtime_failure(error, Step.PULL, container=container, image=image)
