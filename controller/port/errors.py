"""What can go wrong behind the container-runtime port, as a small hierarchy the reconcile can act on.

An adapter turns whatever its SDK raises into exactly one of these (Docker's: `controller.docker.classify`),
so nothing above the port parses error strings. Two lessons from the service this replaces shape it:

- A runtime that cannot be reached, or answers with a gateway or timeout error, says nothing about whether
  a container is alive. That is `RuntimeUnavailable` (transient), never "gone".
- "not found" on its own proves nothing: `network X not found` is not a missing container. `NotFound` is
  raised only when the runtime said precisely that this container, image or volume does not exist.

Every class carries `transient`: True when the same call may succeed later without anyone changing
anything. `controller.core.failures` reads it: a transient failure is always retried with backoff, never
reported as Stalled.
"""

from __future__ import annotations

from typing import ClassVar, Literal

__all__ = [
    "Conflict",
    "ContainerRuntimeError",
    "ImageNotFound",
    "InUse",
    "NotFound",
    "RegistryAuthFailed",
    "RegistryUnavailable",
    "RemovalInProgress",
    "RuntimeUnavailable",
]

Resource = Literal["container", "image", "volume", "network"]


class ContainerRuntimeError(Exception):
    """Any failure of a runtime call; used as is for errors no subclass describes.

    `message` is the runtime's own explanation when there is one (not an SDK's URL-laden text);
    `status_code` is the HTTP status the runtime answered with, or None when no answer came.
    """

    transient: ClassVar[bool] = False

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status_code={self.status_code!r})"


class RuntimeUnavailable(ContainerRuntimeError):
    """The runtime did not answer, or answered that it is unhealthy. Says nothing about containers."""

    transient = True


class NotFound(ContainerRuntimeError):
    """The runtime said precisely that this container, image, volume or network does not exist."""

    def __init__(
        self, message: str, status_code: int | None = None, resource: Resource = "container"
    ) -> None:
        super().__init__(message, status_code)
        self.resource: Resource = resource


class ImageNotFound(NotFound):
    """The image is neither local nor in the registry (unknown repository, tag or platform)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message, status_code, resource="image")


class RemovalInProgress(ContainerRuntimeError):
    """Someone else is already removing this container: removers treat this as success."""

    transient = True


class InUse(ContainerRuntimeError):
    """The object cannot be removed yet because something still uses it (a volume mounted by a container)."""

    transient = True


class Conflict(ContainerRuntimeError):
    """HTTP 409 not covered above; on create this is a name conflict (the caller looks at the holder)."""


class RegistryAuthFailed(ContainerRuntimeError):
    """The registry refused the credentials, or demanded some and none were given."""


class RegistryUnavailable(ContainerRuntimeError):
    """The runtime is fine but could not reach the registry, or the registry failed or rate-limited us."""

    transient = True
