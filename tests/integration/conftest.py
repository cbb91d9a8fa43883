"""Fixtures for tests against a real Docker Engine and real OCI registries.

The engine and the two registries (one open, one with htpasswd auth and random credentials, both
holding the test agent image) are the session's, from tests/conftest.py. Every test gets a `scope`:
a unique name prefix and label for what it creates, removed afterwards whatever happened.

Async tests (`async def test_...`) run on one session-wide event loop; no plugin needed.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from controller.docker.adapter import DockerAdapter
from tests.integration.stack import SCOPE_LABEL, Registries, Scope, remove_everything_named
from tests.support.stack import Registry

ASYNC_TEST_DEADLINE = 120.0


# -- async tests on one loop -------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def loop_runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    test = pyfuncitem.obj
    if not inspect.iscoroutinefunction(test):
        return None
    runner: asyncio.Runner = pyfuncitem.funcargs["loop_runner"]  # type: ignore[assignment]
    names = inspect.signature(test).parameters
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    runner.run(asyncio.wait_for(test(**kwargs), ASYNC_TEST_DEADLINE))
    return True


# -- the engine and the registries -----------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_engine(docker_client: docker.DockerClient) -> Any:
    """A low-level SDK client for setting up and checking things independently of the adapter."""
    return docker_client.api


@pytest.fixture(scope="session")
def registries(registry: Registry, auth_registry: Registry) -> Registries:
    """The session's open and htpasswd registries (tests/conftest.py), as these tests address them."""
    assert auth_registry.username
    assert auth_registry.password
    return Registries(
        plain=registry.address,
        auth=auth_registry.address,
        username=auth_registry.username,
        password=auth_registry.password,
    )


# -- per-test names and cleanup --------------------------------------------------------------------


@pytest.fixture
def scope(docker_engine: Any) -> Iterator[Scope]:
    prefix = f"wcit-{uuid.uuid4().hex[:10]}-"
    yield Scope(prefix=prefix, labels={SCOPE_LABEL: prefix.rstrip("-")})
    remove_everything_named(docker_engine, prefix)


# -- the adapter under test ------------------------------------------------------------------------


@pytest.fixture
def adapter(docker_engine: Any, loop_runner: asyncio.Runner) -> Iterator[DockerAdapter]:
    instance = DockerAdapter(timeout=30.0, pull_timeout=120.0, concurrency=4)
    yield instance
    loop_runner.run(instance.close())
