"""spec.readiness: the HTTP check the agent defines, as the Docker health check the controller sets."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import ValidationError

from controller.api.workspace import ReadinessCheck, WorkspaceSpec
from controller.core import readiness
from controller.docker.create_args import NANOSECONDS, create_args
from tests.support.plans import make_plan

CHECK = {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5, "failureThreshold": 2}

# The config hash of make_plan() since before spec.readiness existed: a field added to what the runtime
# is told must not change the hash of a Workspace that does not use it (every container would be
# recreated on the controller's upgrade).
PINNED_HASH = "72b8e728ac928495f6ec9896a53f530a131e69f593b2d5dc324a474f664f1868"


def test_a_workspace_without_a_readiness_check_keeps_its_config_hash_and_the_images_healthcheck() -> None:
    plan = make_plan()
    assert plan.config_hash == PINNED_HASH
    assert plan.container.health_check is None
    assert "healthcheck" not in create_args(plan.container).container


def test_a_readiness_check_becomes_the_containers_health_check_and_changes_the_hash() -> None:
    plan = make_plan({"readiness": CHECK})
    assert plan.config_hash != PINNED_HASH
    check = create_args(plan.container).container["healthcheck"]
    assert check["test"][:3] == ["CMD", "/bin/sh", "-c"]
    assert check["test"][4:] == ["readiness", "http://127.0.0.1:8080/ready", "1"]
    assert check["interval"] == 5 * NANOSECONDS
    assert check["timeout"] == 2 * NANOSECONDS  # the client's limit plus one second
    assert check["retries"] == 2
    assert check["start_period"] == 0


def test_defaults_are_the_agent_port_the_root_path_and_kubernetes_probe_numbers() -> None:
    check = ReadinessCheck.model_validate({"httpGet": {}})
    assert readiness.probe_url(check) == "http://127.0.0.1:8000/"
    assert (check.period_seconds, check.timeout_seconds, check.failure_threshold) == (10, 1, 3)
    assert readiness.describe(check) == "GET http://127.0.0.1:8000/"


@pytest.mark.parametrize(
    "http_get",
    [
        {"path": "ready"},  # not absolute
        {"path": "/a b"},
        {"path": "/$(reboot)\n"},
        {"path": '/"'},
        {"path": "/`id`"},
        {"port": 0},
        {"port": 65536},
    ],
)
def test_a_path_or_port_that_is_not_one_is_refused(http_get: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        WorkspaceSpec.model_validate({"readiness": {"httpGet": http_get}})


@pytest.mark.parametrize(
    ("field", "value"),
    [("periodSeconds", 0), ("timeoutSeconds", 61), ("failureThreshold", 0), ("initialDelaySeconds", -1)],
)
def test_numbers_out_of_range_are_refused(field: str, value: int) -> None:
    with pytest.raises(ValidationError):
        WorkspaceSpec.model_validate({"readiness": {"httpGet": {}, field: value}})


class _Agent(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path.startswith("/ready") else 503)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def agent() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Agent)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _probe(port: int, path: str) -> int:
    check = ReadinessCheck.model_validate({"httpGet": {"path": path, "port": port}, "timeoutSeconds": 2})
    test = readiness.health_check(check)
    assert test is not None
    return subprocess.run(list(test.test), capture_output=True, timeout=10).returncode


def test_the_probe_script_passes_on_a_2xx_and_fails_on_an_error_status_or_nothing_listening(
    agent: int,
) -> None:
    """The script as Docker runs it, here with this machine's HTTP client (curl, wget or python3)."""
    assert _probe(agent, "/ready?x=1") == 0
    assert _probe(agent, "/down") != 0
    with ThreadingHTTPServer(("127.0.0.1", 0), _Agent) as closed:
        port = closed.server_address[1]
    assert _probe(port, "/ready") != 0


def test_the_url_reaches_the_shell_only_as_an_argument() -> None:
    check = ReadinessCheck.model_validate({"httpGet": {"path": "/x;$HOME&y='1'"}})
    test = readiness.health_check(check)
    assert test is not None
    assert "$HOME" not in test.test[2]  # the script itself
    assert test.test[4] == "http://127.0.0.1:8000/x;$HOME&y='1'"
