"""Containers through the adapter, against the real engine and the test agent image."""

from __future__ import annotations

import asyncio
import io
import re
import tarfile
from typing import Any

import pytest

from controller.docker.adapter import DockerAdapter
from controller.docker.errors import Conflict, DockerError, NotFound
from tests.integration.stack import Registries, Scope
from tests.integration.waiting import eventually, http_get


def agent_image(registries: Registries) -> str:
    return registries.ref(registries.plain, "langgraph")


async def create_agent(
    adapter: DockerAdapter,
    registries: Registries,
    scope: Scope,
    suffix: str,
    *,
    labels: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    restart: str | None = None,
    read_only: bool = False,
) -> str:
    """A container shaped like a workspace: agent port on loopback, config volume at /configs."""
    host_config: dict[str, Any] = {
        "port_bindings": {"8000/tcp": ("127.0.0.1", None)},
        "binds": {scope.name(f"{suffix}-configs"): {"bind": "/configs", "mode": "rw"}},
    }
    if restart:
        host_config["restart_policy"] = {"Name": restart}
    if read_only:
        host_config["read_only"] = True
        host_config["tmpfs"] = {"/tmp": "rw,noexec,nosuid,size=64m"}
    return await adapter.create_container(
        scope.name(suffix),
        {
            "image": agent_image(registries),
            "labels": scope.labels if labels is None else labels,
            "environment": env or {},
            "ports": [8000],
        },
        host_config,
        None,
        "",
    )


async def test_list_returns_only_containers_with_every_label(
    adapter: DockerAdapter, registries: Registries, scope: Scope
) -> None:
    both = {**scope.labels, "workspace.example/role": "agent"}
    wanted = await create_agent(adapter, registries, scope, "both", labels=both)
    await create_agent(adapter, registries, scope, "scope-only", labels=scope.labels)
    await create_agent(adapter, registries, scope, "unlabelled", labels={})

    by_scope = await adapter.list_containers(scope.labels)
    by_both = await adapter.list_containers(both)

    assert sorted(c.name for c in by_scope) == [scope.name("both"), scope.name("scope-only")]
    assert [c.id for c in by_both] == [wanted]
    listed = by_both[0]
    assert listed.detail is False
    assert listed.state == "created"
    assert listed.image == agent_image(registries)
    assert listed.labels["workspace.example/role"] == "agent"


async def test_list_requires_a_label_selector(adapter: DockerAdapter) -> None:
    with pytest.raises(ValueError, match="label selector"):
        await adapter.list_containers({})


async def test_started_agent_becomes_healthy_and_publishes_its_port_on_loopback(
    adapter: DockerAdapter, registries: Registries, scope: Scope
) -> None:
    container_id = await create_agent(adapter, registries, scope, "agent")
    await adapter.start_container(container_id)

    async def healthy() -> Any:
        observed = await adapter.inspect_container(container_id)
        return observed if observed is not None and observed.health == "healthy" else None

    observed = await eventually(healthy, within=30, what="agent healthy")
    assert observed.detail is True
    assert observed.state == "running"
    assert observed.name == scope.name("agent")
    assert observed.image == agent_image(registries)
    assert observed.image_id.startswith("sha256:")
    assert observed.restart_count == 0
    assert observed.oom_killed is False
    assert observed.exit_code is None
    assert observed.started_at is not None
    assert observed.labels == scope.labels | {"org.opencontainers.image.version": "v1"}
    assert observed.host_port is not None
    body = await asyncio.to_thread(http_get, f"http://127.0.0.1:{observed.host_port}/health")
    assert body is not None
    assert body.strip() == "ok"
    # The batched list sees the same port and verdict.
    [listed] = await adapter.list_containers(scope.labels)
    assert listed.host_port == observed.host_port
    assert listed.health == "healthy"


async def test_crash_looping_agent_shows_exit_code_and_restart_count(
    adapter: DockerAdapter, registries: Registries, scope: Scope
) -> None:
    container_id = await create_agent(
        adapter, registries, scope, "crash", env={"AGENT_EXIT": "3"}, restart="unless-stopped"
    )
    await adapter.start_container(container_id)

    async def restarted() -> Any:
        observed = await adapter.inspect_container(container_id)
        return observed if observed is not None and (observed.restart_count or 0) >= 2 else None

    observed = await eventually(restarted, within=30, what="docker restarted the agent twice")
    assert observed.state in ("restarting", "running", "exited")
    if observed.state != "running":
        assert observed.exit_code == 3


async def test_exited_agent_reports_its_exit_code_in_list_and_inspect(
    adapter: DockerAdapter, registries: Registries, scope: Scope
) -> None:
    container_id = await create_agent(adapter, registries, scope, "exits", env={"AGENT_EXIT": "7"})
    await adapter.start_container(container_id)

    async def exited() -> Any:
        observed = await adapter.inspect_container(container_id)
        return observed if observed is not None and observed.state == "exited" else None

    observed = await eventually(exited, within=15, what="agent exited")
    assert observed.exit_code == 7
    assert observed.health is None
    assert observed.finished_at is not None
    [listed] = await adapter.list_containers(scope.labels)
    assert listed.state == "exited"
    assert listed.exit_code == 7


def tar_of(files: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


async def test_files_put_before_start_are_in_the_config_volume_when_the_agent_starts(
    adapter: DockerAdapter, registries: Registries, scope: Scope
) -> None:
    container_id = await create_agent(adapter, registries, scope, "configs", read_only=True)
    before = await adapter.inspect_container(container_id)
    assert before is not None
    assert before.state == "created"

    await adapter.put_files(
        container_id,
        "/configs",
        tar_of(
            {
                "config.yaml": (b"runtime: langgraph\n", 0o644),
                ".auth_token": (b"s3cr3t-token", 0o600),
                "prompts/system.md": (b"be brief\n", 0o644),
            }
        ),
    )
    await adapter.start_container(container_id)

    async def listing() -> str | None:
        observed = await adapter.inspect_container(container_id)
        if observed is None or observed.host_port is None:
            return None
        return await asyncio.to_thread(http_get, f"http://127.0.0.1:{observed.host_port}/cgi-bin/configs")

    body = await eventually(listing, within=30, what="agent serving /cgi-bin/configs")
    entries = dict(re.findall(r"^== (\S+) (\d+ \d+)$", body, flags=re.MULTILINE))
    assert entries == {
        ".auth_token": "600 12",
        "config.yaml": "644 19",
        "prompts/system.md": "644 9",
    }
    assert "s3cr3t-token" in body
    assert "runtime: langgraph" in body


async def test_put_files_into_a_missing_path_fails_without_claiming_the_container_is_gone(
    adapter: DockerAdapter, registries: Registries, scope: Scope
) -> None:
    container_id = await create_agent(adapter, registries, scope, "nopath")
    with pytest.raises(DockerError, match="Could not find the file /does-not-exist") as caught:
        await adapter.put_files(container_id, "/does-not-exist", tar_of({"x": (b"x", 0o644)}))
    assert not isinstance(caught.value, NotFound)
    assert await adapter.inspect_container(container_id) is not None


async def test_creating_a_taken_name_is_a_conflict_and_the_original_survives(
    adapter: DockerAdapter, registries: Registries, scope: Scope
) -> None:
    first = await create_agent(adapter, registries, scope, "dup")
    with pytest.raises(Conflict):
        await create_agent(adapter, registries, scope, "dup")
    adopted = await adapter.inspect_container(scope.name("dup"))
    assert adopted is not None
    assert adopted.id == first


async def test_inspect_of_a_missing_container_is_none(adapter: DockerAdapter, scope: Scope) -> None:
    assert await adapter.inspect_container(scope.name("never-created")) is None


async def test_removing_a_missing_container_succeeds(adapter: DockerAdapter, scope: Scope) -> None:
    await adapter.remove_container(scope.name("never-created"))


async def test_remove_kills_a_running_container_and_is_idempotent(
    adapter: DockerAdapter, registries: Registries, scope: Scope, docker_engine: Any
) -> None:
    container_id = await create_agent(adapter, registries, scope, "doomed", restart="unless-stopped")
    await adapter.start_container(container_id)
    await adapter.remove_container(container_id)
    assert await adapter.inspect_container(container_id) is None
    assert docker_engine.containers(all=True, filters={"id": container_id}) == []
    await adapter.remove_container(container_id)


async def test_concurrent_removals_all_succeed(
    adapter: DockerAdapter, registries: Registries, scope: Scope
) -> None:
    # Several removers at once make the engine answer "removal ... already in progress" to some.
    container_id = await create_agent(adapter, registries, scope, "raced")
    await adapter.start_container(container_id)
    await asyncio.gather(*(adapter.remove_container(container_id) for _ in range(4)))
    assert await adapter.inspect_container(container_id) is None


async def test_stop_ends_a_running_agent_and_stop_of_a_missing_one_is_not_found(
    adapter: DockerAdapter, registries: Registries, scope: Scope
) -> None:
    container_id = await create_agent(adapter, registries, scope, "stopper")
    await adapter.start_container(container_id)
    await adapter.stop_container(container_id, timeout=1)
    observed = await adapter.inspect_container(container_id)
    assert observed is not None
    assert observed.state == "exited"
    await adapter.stop_container(container_id, timeout=1)  # already stopped: no error
    with pytest.raises(NotFound):
        await adapter.stop_container(scope.name("never-created"), timeout=1)


async def test_create_attaches_to_a_network_with_an_alias(
    adapter: DockerAdapter, registries: Registries, scope: Scope, docker_engine: Any
) -> None:
    network_id = await adapter.ensure_network(scope.name("net"))
    container_id = await adapter.create_container(
        scope.name("netted"),
        {"image": agent_image(registries), "labels": scope.labels},
        {},
        {network_id: {"aliases": ["ws-alias"]}},
        "linux/amd64",
    )
    await adapter.start_container(container_id)
    # Keyed by ID at create; the engine names the endpoint after the network once it is attached.
    endpoints = docker_engine.inspect_container(container_id)["NetworkSettings"]["Networks"]
    assert list(endpoints) == [scope.name("net")]
    assert endpoints[scope.name("net")]["NetworkID"] == network_id
    assert "ws-alias" in endpoints[scope.name("net")]["Aliases"]


async def test_create_rejects_arguments_that_have_their_own_parameter(
    adapter: DockerAdapter, registries: Registries, scope: Scope
) -> None:
    with pytest.raises(ValueError, match="name"):
        await adapter.create_container(scope.name("x"), {"image": agent_image(registries), "name": "y"}, {})
