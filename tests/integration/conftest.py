"""Fixtures for tests against a real Docker Engine and real OCI registries.

The session ensures an engine answers (hack/stack/docker.sh), starts two registries on free
loopback ports (one open, one with htpasswd auth and random credentials) and pushes the test agent
image into both (hack/test-image/build.sh). Every test gets a `scope`: a unique name prefix and
label for what it creates, removed afterwards whatever happened.

Async tests (`async def test_...`) run on one session-wide event loop; no plugin needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from controller.docker.adapter import DockerAdapter
from tests.integration.stack import (
    DOCKER_SH,
    IMAGE_PREFIX,
    REGISTRY_SH,
    ROOT,
    RUNTIMES,
    SCOPE_LABEL,
    Registries,
    Scope,
    push_test_image,
    remove_everything_named,
    start_registry,
)

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
def docker_engine() -> Iterator[Any]:
    """A low-level SDK client for setting up and checking things independently of the adapter."""
    subprocess.run(["bash", str(DOCKER_SH), "start"], check=True, cwd=ROOT)
    client = docker.from_env(timeout=60)
    yield client.api
    client.close()


@pytest.fixture(scope="session")
def registries(docker_engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registries]:
    state = tmp_path_factory.mktemp("stack")
    env = {**os.environ, "WC_STATE_DIR": str(state)}
    session = uuid.uuid4().hex[:8]
    username, password = f"user{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    started: list[str] = []
    pushed: list[str] = []
    try:
        plain = start_registry(f"wcit-{session}-plain", env, started)
        auth = start_registry(f"wcit-{session}-auth", env, started, f"{username}:{password}")
        push_test_image(plain, env)
        # Log in with a throwaway client config, so the machine's own docker login is left alone.
        login_env = {**env, "DOCKER_CONFIG": str(state / "docker-config")}
        subprocess.run(
            ["docker", "login", "--username", username, "--password-stdin", auth],
            input=password.encode(),
            env=login_env,
            check=True,
            capture_output=True,
        )
        push_test_image(auth, login_env)
        pushed = [f"{reg}/{IMAGE_PREFIX}-{rt}:latest" for reg in (plain, auth) for rt in RUNTIMES]
        yield Registries(plain=plain, auth=auth, username=username, password=password)
    finally:
        for name in started:
            subprocess.run(["bash", str(REGISTRY_SH), "stop", name], env=env, check=False)
        for ref in pushed:  # the local tags build.sh left behind
            with contextlib.suppress(docker.errors.APIError):
                docker_engine.remove_image(ref, noprune=True)


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
