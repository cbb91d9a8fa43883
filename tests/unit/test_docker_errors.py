"""Classification of Docker SDK failures. Messages are the ones Docker Engine 20.10 (API 1.41) gives."""

from __future__ import annotations

import json

import docker.errors
import pytest
import requests
import urllib3.exceptions

from controller.docker.classify import classify, classify_message, classify_pull_error
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


def api_error(status: int, message: str, path: str = "/containers/x/json") -> docker.errors.APIError:
    """The exception the SDK raises for an HTTP error answer, built by the SDK's own factory."""
    response = requests.Response()
    response.status_code = status
    response.reason = "Error"
    response.url = f"http+docker://localhost/v1.41{path}"
    response._content = json.dumps({"message": message}).encode()
    try:
        docker.errors.create_api_error_from_http_exception(requests.exceptions.HTTPError(response=response))
    except docker.errors.APIError as exc:
        return exc
    raise AssertionError("the SDK factory always raises")


@pytest.mark.parametrize(
    ("status", "message", "expected", "resource"),
    [
        (404, "No such container: nope-xyz", NotFound, "container"),
        (404, "get nope-vol-xyz: no such volume", NotFound, "volume"),
        (404, "No such image: nope/img:x", ImageNotFound, "image"),
        (404, "no such image: nope/img:x: No such image: nope/img:x", ImageNotFound, "image"),
        # A create or start on a network removed by hand (seed bug B13): the adapter makes it again.
        (404, "network explore-missing-net not found", NotFound, "network"),
    ],
)
def test_precise_not_found_names_the_missing_resource(
    status: int, message: str, expected: type[NotFound], resource: str
) -> None:
    error = classify(api_error(status, message))
    assert type(error) is expected
    assert isinstance(error, NotFound)
    assert error.resource == resource
    assert error.status_code == status
    assert not error.transient


@pytest.mark.parametrize(
    "message",
    [
        "Could not find the file /nonexist in container explore-vol",
        "plugin not found",
    ],
)
def test_other_not_found_messages_are_not_a_missing_resource(message: str) -> None:
    error = classify(api_error(404, message))
    assert not isinstance(error, NotFound)
    assert type(error) is ContainerRuntimeError
    assert error.status_code == 404


@pytest.mark.parametrize(
    "message",
    [
        "manifest for 127.0.0.1:5391/molecule-ai/workspace-template-langgraph:nope not found: "
        "manifest unknown: manifest unknown",
        "name unknown: repository name not known to registry",
        "image with reference busybox:latest was found but does not match the specified platform: "
        "wanted linux/arm64, actual: linux/amd64",
        "no matching manifest for linux/arm64/v8 in the manifest list entries",
    ],
)
def test_missing_tag_repository_or_platform_is_image_not_found(message: str) -> None:
    error = classify(api_error(404, message, "/images/create"))
    assert type(error) is ImageNotFound
    assert not error.transient


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (
            500,
            'Head "http://127.0.0.1:5392/v2/molecule-ai/workspace-template-langgraph/manifests/latest": '
            "no basic auth credentials",
        ),
        (500, "unauthorized: authentication required"),
        (500, "denied: requested access to the resource is denied"),
        (
            500,
            "pull access denied for nope/img, repository does not exist or may require 'docker login': "
            "denied: requested access to the resource is denied",
        ),
        (401, "anything at all"),
    ],
)
def test_registry_refusals_are_auth_failures_even_as_500(status: int, message: str) -> None:
    # The engine reports a registry's 401 as its own 500, so the status alone would say "daemon broken".
    error = classify(api_error(status, message, "/images/create"))
    assert type(error) is RegistryAuthFailed
    assert not error.transient


def test_runtime_permission_denied_is_not_a_registry_auth_failure() -> None:
    message = (
        "failed to create shim task: OCI runtime create failed: runc create failed: unable to start "
        'container process: exec: "/agent.sh": permission denied: unknown'
    )
    error = classify(api_error(500, message, "/containers/x/start"))
    assert type(error) is ContainerRuntimeError
    assert not error.transient


def test_a_failed_start_is_a_plain_error_not_an_unavailable_daemon() -> None:
    message = (
        "failed to create shim task: OCI runtime create failed: runc create failed: unable to start "
        "container process: unable to apply caps: operation not permitted: unknown"
    )
    error = classify(api_error(500, message, "/containers/x/start"))
    assert type(error) is ContainerRuntimeError
    assert error.message == message


def test_an_unreachable_registry_is_transient_and_not_the_daemon() -> None:
    message = 'Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused'
    error = classify(api_error(500, message, "/images/create"))
    assert type(error) is RegistryUnavailable
    assert error.transient


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("removal of container explore-vol is already in progress", RemovalInProgress),
        ("remove explore-vol1: volume is in use - [0ed5dfe4d038e521]", InUse),
        (
            'conflict: unable to remove repository reference "reg/x:1" (must force) - container '
            "8c4e2f1a9b3d is using its referenced image 5d0da3dc9764",
            InUse,
        ),
        (
            "conflict: unable to delete 5d0da3dc9764 (cannot be forced) - image is being used by running "
            "container 8c4e2f1a9b3d",
            InUse,
        ),
        (
            'Conflict. The container name "/explore-priv" is already in use by container "2656532f7edf". '
            "You have to remove (or rename) that container to be able to reuse that name.",
            Conflict,
        ),
        ("network with name explore-net already exists", Conflict),
    ],
)
def test_409s_are_told_apart(message: str, expected: type[ContainerRuntimeError]) -> None:
    error = classify(api_error(409, message))
    assert type(error) is expected


def test_removal_in_progress_and_in_use_are_transient_a_name_conflict_is_not() -> None:
    assert classify(api_error(409, "removal of container x is already in progress")).transient
    assert classify(api_error(409, "remove v: volume is in use - [abc]")).transient
    assert not classify(api_error(409, 'Conflict. The container name "/x" is already in use')).transient


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_and_unavailable_answers_mean_the_daemon_is_unavailable(status: int) -> None:
    error = classify(api_error(status, "Service Unavailable"))
    assert type(error) is RuntimeUnavailable
    assert error.transient


@pytest.mark.parametrize(
    "message",
    [
        "context deadline exceeded",
        'connection error: desc = "transport: error while dialing: dial unix '
        '/run/containerd/containerd.sock: connect: connection refused"',
    ],
)
def test_500s_that_say_the_daemon_is_struggling_are_unavailable(message: str) -> None:
    assert type(classify(api_error(500, message))) is RuntimeUnavailable


def test_ambiguous_network_is_a_plain_error() -> None:
    error = classify(api_error(400, "network explore-dup is ambiguous (2 matches found on name)"))
    assert type(error) is ContainerRuntimeError
    assert error.status_code == 400


def test_missing_socket_is_unavailable() -> None:
    exc = requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError(
            "Connection aborted.", FileNotFoundError(2, "No such file or directory")
        )
    )
    error = classify(exc)
    assert type(error) is RuntimeUnavailable
    assert error.transient
    assert error.status_code is None


def test_refused_connection_and_read_timeout_are_unavailable() -> None:
    refused = requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError(
            "Connection aborted.", ConnectionRefusedError(111, "Connection refused")
        )
    )
    timeout = requests.exceptions.ReadTimeout("Read timed out. (read timeout=1)")
    assert type(classify(refused)) is RuntimeUnavailable
    assert type(classify(timeout)) is RuntimeUnavailable


def test_version_negotiation_failure_is_unavailable_through_its_cause() -> None:
    # docker.from_env() asks the daemon for its version and wraps the connection error.
    cause = requests.exceptions.ConnectionError(
        "('Connection aborted.', FileNotFoundError(2, 'No such file'))"
    )
    try:
        try:
            raise cause
        except requests.exceptions.ConnectionError as inner:
            raise docker.errors.DockerException(
                f"Error while fetching server API version: {inner}"
            ) from inner
    except docker.errors.DockerException as exc:
        wrapped = exc
    assert type(classify(wrapped)) is RuntimeUnavailable


def test_sdk_argument_errors_are_plain_errors() -> None:
    error = classify(docker.errors.InvalidArgument("Invalid port binding"))
    assert type(error) is ContainerRuntimeError
    assert error.message == "Invalid port binding"
    assert not error.transient


def test_classified_message_is_the_daemons_explanation_not_the_sdk_url_text() -> None:
    error = classify(api_error(404, "No such container: nope-xyz"))
    assert str(error) == "No such container: nope-xyz"


def test_an_already_classified_error_passes_through_unchanged() -> None:
    original = InUse("remove v: volume is in use", 409)
    assert classify(original) is original


def test_classify_never_raises_on_odd_input() -> None:
    response = requests.Response()
    response.status_code = 500
    response._content = b"<html>proxy error</html>"
    odd: list[BaseException] = [
        Exception(),
        requests.exceptions.HTTPError(response=response),
        requests.exceptions.HTTPError("no response attached"),
        docker.errors.APIError("message only"),
        KeyError("Id"),
    ]
    for exc in odd:
        assert isinstance(classify(exc), ContainerRuntimeError)
    assert classify(requests.exceptions.HTTPError(response=response)).message == "<html>proxy error</html>"


def test_stream_errors_without_a_status_are_classified_by_message() -> None:
    assert type(classify_message("manifest unknown: manifest unknown")) is ImageNotFound
    assert type(classify_message("unauthorized: authentication required")) is RegistryAuthFailed
    assert type(classify_message("something else broke")) is ContainerRuntimeError


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("manifest unknown: manifest unknown", ImageNotFound),
        ("unauthorized: authentication required", RegistryAuthFailed),
        ("unexpected EOF", RegistryUnavailable),
        ("read tcp 127.0.0.1:40000->127.0.0.1:5000: read: connection reset by peer", RegistryUnavailable),
    ],
)
def test_errors_inside_a_pull_stream_blame_the_registry_side(
    message: str, expected: type[ContainerRuntimeError]
) -> None:
    error = classify_pull_error(message)
    assert type(error) is expected
    assert error.message == message
