"""Docker's failures in the port's vocabulary: `classify` maps whatever the SDK raises to one
`controller.port.errors` class.

The SDK raises a mix of `docker.errors.*`, `requests.*`, `urllib3.*` and plain `OSError`s, and the daemon
reports most problems only as text. The rules here are the only place that reads that text.
"""

from __future__ import annotations

import json

import requests
import urllib3.exceptions

from controller.port.errors import (
    Conflict,
    ContainerRuntimeError,
    ImageNotFound,
    InUse,
    NotFound,
    RegistryAuthFailed,
    RegistryUnavailable,
    RemovalInProgress,
    RuntimeUnavailable,
)

__all__ = ["classify", "classify_message", "classify_pull_error"]

# Matched against the lower-cased daemon message. Order matters: the first rule that matches wins.
_REMOVAL_IN_PROGRESS = ("already in progress",)
_IN_USE = ("is in use", "has active endpoints", "is being used by", "is using its referenced image")
_AUTH = (
    "unauthorized",
    "no basic auth credentials",
    "authentication required",
    "pull access denied",
    "access denied",
    "requested access to the resource is denied",
    "incorrect username or password",
)
_IMAGE_MISSING = (
    "no such image",
    "manifest unknown",
    "name unknown",
    "repository does not exist",
    "does not match the specified platform",
    "no matching manifest",
    "not found: does not exist or no pull access",
)
_REGISTRY = ('get "http', 'head "http', 'post "http', "toomanyrequests", "/v2/")
_DAEMON_UNHEALTHY = (
    "cannot connect to the docker daemon",
    "is the docker daemon running",
    "context deadline exceeded",
    "error while dialing",
    "transport is closing",
    "connection refused",
    "connection reset",
    "broken pipe",
    "i/o timeout",
)


def classify_message(message: str, status_code: int | None = None) -> ContainerRuntimeError:
    """Classify a daemon error message (and its HTTP status, when there was a response).

    Also used for errors the daemon reports inside a 200 stream, such as a failed pull.
    """
    text = message.lower()
    if "removal of container" in text and any(m in text for m in _REMOVAL_IN_PROGRESS):
        return RemovalInProgress(message, status_code)
    # 409 for a volume or image in use; 403 for a network that still has endpoints.
    if status_code in (409, 403, None) and any(m in text for m in _IN_USE):
        return InUse(message, status_code)
    if status_code == 401 or any(m in text for m in _AUTH) or _registry_denied(text):
        return RegistryAuthFailed(message, status_code)
    if any(m in text for m in _IMAGE_MISSING) or ("manifest for" in text and "not found" in text):
        return ImageNotFound(message, status_code)
    if "no such container" in text:
        return NotFound(message, status_code, resource="container")
    if "no such volume" in text:
        return NotFound(message, status_code, resource="volume")
    if status_code == 404 and "network" in text and "not found" in text:
        return NotFound(message, status_code, resource="network")
    if any(m in text for m in _REGISTRY) and (
        status_code is None or status_code >= 500 or status_code == 429
    ):
        return RegistryUnavailable(message, status_code)
    if status_code == 409:
        return Conflict(message, status_code)
    if status_code in (502, 503, 504):
        return RuntimeUnavailable(message, status_code)
    if (status_code is None or status_code >= 500) and any(m in text for m in _DAEMON_UNHEALTHY):
        return RuntimeUnavailable(message, status_code)
    return ContainerRuntimeError(message, status_code)


def _registry_denied(text: str) -> bool:
    # Registries answer "denied: <reason>"; a runtime's "permission denied: unknown" is not about auth.
    return text.startswith("denied:") or ": denied:" in text


def classify_pull_error(message: str) -> ContainerRuntimeError:
    """Classify an error the daemon reports inside a pull's progress stream (after a 200 answer).

    The daemon was fine enough to stream; what failed was the registry side (a blob download, a
    reset connection), so anything not more specific is `RegistryUnavailable`.
    """
    error = classify_message(message)
    if type(error) in (ContainerRuntimeError, RuntimeUnavailable):
        return RegistryUnavailable(message)
    return error


# Raised when no HTTP answer came at all: the socket is missing, refused, reset or silent.
_NO_ANSWER: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.TimeoutError,
    urllib3.exceptions.NewConnectionError,
    ConnectionError,
    TimeoutError,
)


def classify(exc: BaseException) -> ContainerRuntimeError:
    """Map any exception raised by a Docker SDK call to the `ContainerRuntimeError` subclass it means.

    Pure: it only reads the exception (type, HTTP status, daemon explanation, and the chain of
    causes, because the SDK wraps connection errors, e.g. while negotiating the API version).
    """
    if isinstance(exc, ContainerRuntimeError):
        return exc
    response = getattr(exc, "response", None)
    if isinstance(exc, requests.exceptions.HTTPError) and response is not None:
        return classify_message(_explanation(exc, response), _status(response))
    for link in _chain(exc):
        if isinstance(link, _NO_ANSWER) or (isinstance(link, OSError) and _is_socket_error(link)):
            return RuntimeUnavailable(f"Docker daemon did not answer: {exc}")
    return classify_message(str(exc) or type(exc).__name__)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and not any(link is s for s in seen) and len(seen) < 16:
        seen.append(link)
        link = link.__cause__ or link.__context__
    # requests and urllib3 keep the underlying error in `.args` (e.g. ProtocolError(msg, OSError)).
    for item in list(seen):
        seen.extend(arg for arg in item.args if isinstance(arg, BaseException))
    return seen


def _is_socket_error(exc: OSError) -> bool:
    # A unix socket path that does not exist surfaces as FileNotFoundError inside the SDK's errors.
    return isinstance(exc, FileNotFoundError | ConnectionError | TimeoutError) or (
        exc.errno is not None and exc.errno in _SOCKET_ERRNOS
    )


_SOCKET_ERRNOS = {104, 110, 111, 112, 113, 32}  # reset, timed out, refused, host down/unreachable, pipe


def _explanation(exc: BaseException, response: object) -> str:
    explanation = getattr(exc, "explanation", None)
    if isinstance(explanation, str) and explanation:
        return explanation
    text = getattr(response, "text", None)
    if isinstance(text, str) and text.strip():
        try:
            parsed = json.loads(text)
        except ValueError:
            return text.strip()
        if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
            return str(parsed["message"])
        return text.strip()
    return str(exc)


def _status(response: object) -> int | None:
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None
