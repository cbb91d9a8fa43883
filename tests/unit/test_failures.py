"""What a failed runtime call means: retried with backoff or Stalled, with which reason and message.

Pinned: an unanswering runtime is always DockerUnavailable and retried; a failed start is retried and
named; no transient error is ever Stalled, at any step; a missing image at the pull and a refused
configuration (HTTP 400) at create are Stalled; anything else is retried as ReconcileError. For a pull,
a registry-side failure falls back to the cached image when the policy is unset and the image is present.
"""

from __future__ import annotations

import pytest

from controller.api.workspace import PullPolicy
from controller.core.causes import Cause
from controller.core.failures import Failure, Step, pull_failure, runtime_failure
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

NAME = "ws-3f2a9c1e-8b7"
IMAGE = "registry.example.com:5000/team/agent:v1"
REGISTRY = "registry.example.com:5000"

TRANSIENT: list[ContainerRuntimeError] = [
    RuntimeUnavailable("connection refused"),
    RegistryUnavailable("registry answered 503", 500),
    InUse("volume is in use", 409),
    RemovalInProgress("removal of container is already in progress", 409),
]
NOT_TRANSIENT: list[ContainerRuntimeError] = [
    ContainerRuntimeError("something broke", 500),
    ContainerRuntimeError("invalid cpus", 400),
    NotFound("no such container", 404),
    ImageNotFound("manifest unknown", 404),
    Conflict("name already in use", 409),
    RegistryAuthFailed("unauthorized", 401),
]


@pytest.mark.parametrize("error", TRANSIENT + NOT_TRANSIENT, ids=repr)
def test_which_error_classes_are_transient(error: ContainerRuntimeError) -> None:
    assert error.transient is (error in TRANSIENT)


@pytest.mark.parametrize("step", list(Step))
@pytest.mark.parametrize("error", TRANSIENT, ids=repr)
def test_a_transient_error_is_retried_at_every_step(error: ContainerRuntimeError, step: Step) -> None:
    assert runtime_failure(error, step, container=NAME, image=IMAGE).stalled is False


@pytest.mark.parametrize("step", list(Step))
@pytest.mark.parametrize(
    "error",
    [RegistryUnavailable("bad request upstream", 400), InUse("in use", 400), RuntimeUnavailable("x", 400)],
    ids=repr,
)
def test_a_transient_error_with_http_400_is_still_retried(error: ContainerRuntimeError, step: Step) -> None:
    assert runtime_failure(error, step, container=NAME, image=IMAGE).stalled is False


@pytest.mark.parametrize("step", list(Step))
def test_an_unanswering_runtime_is_docker_unavailable_at_every_step(step: Step) -> None:
    failure = runtime_failure(RuntimeUnavailable("connection refused"), step, container=NAME, image=IMAGE)
    assert failure == Failure(
        Cause("DockerUnavailable", "the Docker daemon is not answering: connection refused"), stalled=False
    )


RUNTIME_FAILURES: list[tuple[str, ContainerRuntimeError, Step, str, bool]] = [
    # (id, error, step, reason, stalled)
    ("registry unavailable at pull", RegistryUnavailable("503"), Step.PULL, "ReconcileError", False),
    ("in use at other", InUse("volume in use", 409), Step.OTHER, "ReconcileError", False),
    (
        "removal in progress at other",
        RemovalInProgress("in progress", 409),
        Step.OTHER,
        "ReconcileError",
        False,
    ),
    ("image not found at pull", ImageNotFound("manifest unknown", 404), Step.PULL, "ImageNotFound", True),
    ("image not found at create", ImageNotFound("No such image", 404), Step.CREATE, "ReconcileError", False),
    ("image not found at start", ImageNotFound("No such image", 404), Step.START, "ReconcileError", False),
    ("image not found at other", ImageNotFound("No such image", 404), Step.OTHER, "ReconcileError", False),
    (
        "http 400 at create",
        ContainerRuntimeError("invalid cpus", 400),
        Step.CREATE,
        "ContainerRejected",
        True,
    ),
    ("http 400 at pull", ContainerRuntimeError("bad platform", 400), Step.PULL, "ReconcileError", False),
    ("http 400 at start", ContainerRuntimeError("bad mount", 400), Step.START, "ReconcileError", False),
    ("http 400 at other", ContainerRuntimeError("bad request", 400), Step.OTHER, "ReconcileError", False),
    ("http 500 at create", ContainerRuntimeError("boom", 500), Step.CREATE, "ReconcileError", False),
    ("no status at create", ContainerRuntimeError("boom"), Step.CREATE, "ReconcileError", False),
    ("conflict at create", Conflict("name in use", 409), Step.CREATE, "ReconcileError", False),
    ("container not found at other", NotFound("no such container", 404), Step.OTHER, "ReconcileError", False),
    (
        "auth refused outside pull_failure",
        RegistryAuthFailed("denied", 401),
        Step.PULL,
        "ReconcileError",
        False,
    ),
    ("start failure", ContainerRuntimeError("port is taken", 500), Step.START, "ReconcileError", False),
]


@pytest.mark.parametrize(
    ("error", "step", "reason", "stalled"), [pytest.param(*row[1:], id=row[0]) for row in RUNTIME_FAILURES]
)
def test_runtime_failure_table(error: ContainerRuntimeError, step: Step, reason: str, stalled: bool) -> None:
    failure = runtime_failure(error, step, container=NAME, image=IMAGE)
    assert (failure.cause.reason, failure.stalled) == (reason, stalled)


@pytest.mark.parametrize(
    "error",
    [ContainerRuntimeError("port is taken", 500), InUse("in use", 409), ImageNotFound("No such image", 404)],
    ids=repr,
)
def test_a_failed_start_names_the_container(error: ContainerRuntimeError) -> None:
    failure = runtime_failure(error, Step.START, container=NAME, image=IMAGE)
    assert failure == Failure(Cause("ReconcileError", f"failed to start container {NAME}: {error}"), False)


def test_a_missing_image_names_the_image_its_registry_and_the_error() -> None:
    failure = runtime_failure(ImageNotFound("manifest unknown", 404), Step.PULL, container=NAME, image=IMAGE)
    assert failure.stalled
    assert failure.cause.reason == "ImageNotFound"
    assert f"image {IMAGE!r}" in failure.cause.message
    assert f"registry {REGISTRY} serves" in failure.cause.message
    assert failure.cause.message.endswith("(underlying error: manifest unknown)")


def test_a_refused_configuration_names_the_container_and_the_daemons_words() -> None:
    error = ContainerRuntimeError("range of CPUs is from 0.01 to 2.00", 400)
    failure = runtime_failure(error, Step.CREATE, container=NAME, image=IMAGE)
    assert failure == Failure(
        Cause(
            "ContainerRejected",
            f"the Docker daemon refused to create {NAME}: range of CPUs is from 0.01 to 2.00",
        ),
        True,
    )


def test_anything_else_is_retried_with_the_errors_own_words() -> None:
    failure = runtime_failure(Conflict("name in use", 409), Step.CREATE, container=NAME, image=IMAGE)
    assert failure == Failure(Cause("ReconcileError", "name in use"), False)


# --- pull_failure ---------------------------------------------------------------------------------

PULLS: list[tuple[str, ContainerRuntimeError, PullPolicy | None, bool, tuple[str, bool] | None]] = [
    # (id, error, policy, present, (reason, stalled) or None for "use the cached image")
    ("unset, present: image not found -> cached", ImageNotFound("manifest unknown", 404), None, True, None),
    ("unset, present: auth refused -> cached", RegistryAuthFailed("denied", 401), None, True, None),
    ("unset, present: registry down -> cached", RegistryUnavailable("503", 503), None, True, None),
    (
        "unset, present: docker down is not tolerated",
        RuntimeUnavailable("connection refused"),
        None,
        True,
        ("DockerUnavailable", False),
    ),
    (
        "unset, present: another error is not tolerated",
        ContainerRuntimeError("disk full", 500),
        None,
        True,
        ("ReconcileError", False),
    ),
    (
        "unset, absent: image not found stalls",
        ImageNotFound("manifest unknown", 404),
        None,
        False,
        ("ImageNotFound", True),
    ),
    (
        "unset, absent: auth refused stalls",
        RegistryAuthFailed("denied", 401),
        None,
        False,
        ("RegistryAuthFailed", True),
    ),
    (
        "unset, absent: registry down retries",
        RegistryUnavailable("503", 503),
        None,
        False,
        ("ReconcileError", False),
    ),
    (
        "always, present: image not found stalls",
        ImageNotFound("manifest unknown", 404),
        "Always",
        True,
        ("ImageNotFound", True),
    ),
    (
        "always, present: auth refused stalls",
        RegistryAuthFailed("denied", 401),
        "Always",
        True,
        ("RegistryAuthFailed", True),
    ),
    (
        "always, present: registry down retries",
        RegistryUnavailable("503", 503),
        "Always",
        True,
        ("ReconcileError", False),
    ),
    (
        "always, present: docker down retries",
        RuntimeUnavailable("timeout"),
        "Always",
        True,
        ("DockerUnavailable", False),
    ),
    (
        "if-not-present, absent: image not found stalls",
        ImageNotFound("manifest unknown", 404),
        "IfNotPresent",
        False,
        ("ImageNotFound", True),
    ),
    (
        "if-not-present, absent: registry down retries",
        RegistryUnavailable("503", 503),
        "IfNotPresent",
        False,
        ("ReconcileError", False),
    ),
]


@pytest.mark.parametrize(
    ("error", "policy", "present", "expected"), [pytest.param(*row[1:], id=row[0]) for row in PULLS]
)
@pytest.mark.parametrize("has_credentials", [False, True], ids=["no credentials", "credentials"])
def test_pull_failure_table(
    error: ContainerRuntimeError,
    policy: PullPolicy | None,
    present: bool,
    expected: tuple[str, bool] | None,
    has_credentials: bool,
) -> None:
    failure = pull_failure(
        error, container=NAME, image=IMAGE, policy=policy, present=present, has_credentials=has_credentials
    )
    assert (None if failure is None else (failure.cause.reason, failure.stalled)) == expected


@pytest.mark.parametrize(
    ("has_credentials", "hint"),
    [
        pytest.param(True, "check the credentials in spec.imagePullSecrets", id="credentials given"),
        pytest.param(
            False,
            "add a kubernetes.io/dockerconfigjson Secret for it to spec.imagePullSecrets",
            id="no credentials",
        ),
    ],
)
def test_a_refused_pull_hints_at_the_pull_secrets(has_credentials: bool, hint: str) -> None:
    failure = pull_failure(
        RegistryAuthFailed("unauthorized: authentication required", 401),
        container=NAME,
        image=IMAGE,
        policy="Always",
        present=False,
        has_credentials=has_credentials,
    )
    assert failure == Failure(
        Cause(
            "RegistryAuthFailed",
            f"registry {REGISTRY} refused to serve {IMAGE}: unauthorized: authentication required; {hint}",
        ),
        True,
    )


def test_a_missing_image_at_the_pull_has_the_same_message_as_runtime_failure() -> None:
    error = ImageNotFound("manifest unknown", 404)
    failure = pull_failure(
        error, container=NAME, image=IMAGE, policy=None, present=False, has_credentials=False
    )
    assert failure == runtime_failure(error, Step.PULL, container=NAME, image=IMAGE)
