"""Containers through the adapter, against the real engine and the test agent image."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import docker
import pytest

from controller.api.workspace import WorkspaceSpec
from controller.core import naming
from controller.core.identity import WorkspaceRef
from controller.core.plan import ContainerPlan, ResolvedInputs, plan_workspace
from controller.docker.adapter import DockerAdapter
from controller.port.errors import Conflict, ContainerRuntimeError, NotFound
from controller.port.values import File, FileTree
from controller.settings import ControllerSettings
from tests.integration.stack import NO_FILES, Registries, Scope, container_spec, remove_everything_named
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
    restart: str = "no",
    read_only: bool = False,
    files: Mapping[str, File] | None = None,
) -> str:
    """A container shaped like a workspace: agent port on loopback, config volume at /configs holding
    `files` (written at create, before anything starts)."""
    spec = container_spec(
        scope.name(suffix),
        agent_image(registries),
        labels=scope.labels if labels is None else labels,
        env=env,
        restart=restart,
        publish=True,
        binds=[f"{scope.name(f'{suffix}-configs')}:/configs:rw"],
        read_only=read_only,
    )
    return await adapter.create_container(spec, FileTree(root="/configs", files=files or {}))


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


async def test_received_bytes_are_none_before_start_and_grow_with_requests_from_outside(
    adapter: DockerAdapter, registries: Registries, scope: Scope
) -> None:
    container_id = await create_agent(adapter, registries, scope, "traffic")
    assert await adapter.network_received(container_id) is None  # created, not running
    await adapter.start_container(container_id)

    async def healthy() -> Any:
        observed = await adapter.inspect_container(container_id)
        return observed if observed is not None and observed.health == "healthy" else None

    observed = await eventually(healthy, within=30, what="agent healthy")
    before = await adapter.network_received(container_id)
    assert before is not None
    for _ in range(20):
        assert await asyncio.to_thread(http_get, f"http://127.0.0.1:{observed.host_port}/health") is not None
    after = await adapter.network_received(container_id)
    assert after is not None
    assert after - before > 20 * 50  # each request brings its headers and its TCP packets


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


async def test_files_written_at_create_are_in_the_config_volume_when_the_agent_starts(
    adapter: DockerAdapter, registries: Registries, scope: Scope
) -> None:
    container_id = await create_agent(
        adapter,
        registries,
        scope,
        "configs",
        read_only=True,
        files={
            "config.yaml": File(b"runtime: langgraph\n", 0o644),
            ".auth_token": File(b"s3cr3t-token", 0o600),
            "prompts/system.md": File(b"be brief\n", 0o644),
        },
    )
    before = await adapter.inspect_container(container_id)
    assert before is not None
    assert before.state == "created"

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


async def test_write_files_into_a_missing_path_fails_without_claiming_the_container_is_gone(
    adapter: DockerAdapter, registries: Registries, scope: Scope
) -> None:
    container_id = await create_agent(adapter, registries, scope, "nopath")
    missing = FileTree(root="/does-not-exist", files={"x": File(b"x")})
    with pytest.raises(ContainerRuntimeError, match="Could not find the file /does-not-exist") as caught:
        await adapter.write_files(container_id, missing)
    assert not isinstance(caught.value, NotFound)
    assert await adapter.inspect_container(container_id) is not None


async def test_create_whose_files_cannot_be_written_fails_and_leaves_the_created_container(
    adapter: DockerAdapter, registries: Registries, scope: Scope
) -> None:
    spec = container_spec(scope.name("halfway"), agent_image(registries), labels=scope.labels)
    missing = FileTree(root="/does-not-exist", files={"x": File(b"x")})
    with pytest.raises(ContainerRuntimeError, match="Could not find the file /does-not-exist") as caught:
        await adapter.create_container(spec, missing)
    assert not isinstance(caught.value, NotFound)
    # Left for the next pass to write the files and start it.
    left = await adapter.inspect_container(scope.name("halfway"))
    assert left is not None
    assert left.state == "created"


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
    await adapter.stop_container(container_id, grace=1)
    observed = await adapter.inspect_container(container_id)
    assert observed is not None
    assert observed.state == "exited"
    await adapter.stop_container(container_id, grace=1)  # already stopped: no error
    with pytest.raises(NotFound):
        await adapter.stop_container(scope.name("never-created"), grace=1)


async def test_create_attaches_to_a_network_with_an_alias(
    adapter: DockerAdapter, registries: Registries, scope: Scope, docker_engine: Any
) -> None:
    network_id = await adapter.ensure_network(scope.name("net"))
    spec = container_spec(
        scope.name("netted"),
        agent_image(registries),
        labels=scope.labels,
        network=scope.name("net"),
        aliases=["ws-alias"],
        platform="linux/amd64",
    )
    container_id = await adapter.create_container(spec, NO_FILES, network_id=network_id)
    await adapter.start_container(container_id)
    # Keyed by ID at create; the engine names the endpoint after the network once it is attached.
    endpoints = docker_engine.inspect_container(container_id)["NetworkSettings"]["Networks"]
    assert list(endpoints) == [scope.name("net")]
    assert endpoints[scope.name("net")]["NetworkID"] == network_id
    assert "ws-alias" in endpoints[scope.name("net")]["Aliases"]


# --- tier hardening, from real plans ----------------------------------------------------------------

MIB = 1024 * 1024
TIER2_CAPS = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "NET_BIND_SERVICE"]
# Bit numbers from linux/capability.h: CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4, KILL 5, SETGID 6,
# SETUID 7, NET_BIND_SERVICE 10.
TIER2_CAP_MASK = f"{sum(1 << bit for bit in (0, 1, 3, 4, 5, 6, 7, 10)):016x}"


@pytest.fixture
def workspace_uids(docker_engine: Any) -> Iterator[list[str]]:
    """Fresh Workspace UIDs for plans; whatever is named after them (container, volumes) is removed after."""
    uids: list[str] = []
    yield uids
    for uid in uids:
        remove_everything_named(docker_engine, naming.container_name(uid))


def tier_plan(tier: int, registries: Registries, scope: Scope, uids: list[str]) -> ContainerPlan:
    """The real plan of a Workspace of `tier` running the test agent, on the scope's network."""
    uid = str(uuid.uuid4())
    uids.append(uid)
    settings = ControllerSettings(instance=scope.name("ctl"), network=scope.name("net"))
    spec = WorkspaceSpec.model_validate(
        {
            "tier": tier,
            "image": agent_image(registries),
            "config": {"fromConfigMaps": [{"name": "config"}]},
            "authToken": {"secretRef": {"name": "token"}},
        }
    )
    inputs = ResolvedInputs(config_maps=({"config.yaml": "name: hardened\n"},), auth_token="token-1")
    plan = plan_workspace(WorkspaceRef(uid=uid, namespace="it", name=f"tier{tier}"), spec, inputs, settings)
    assert isinstance(plan, ContainerPlan), plan
    return plan


async def run_planned_agent(adapter: DockerAdapter, plan: ContainerPlan) -> str:
    """Create the plan's container through the adapter (as the reconcile does), start it, and wait until
    its agent answers /health on the published loopback port. Returns the container's ID."""
    network_id = await adapter.ensure_network(plan.container.network or "")
    container_id = await adapter.create_container(plan.container, plan.files, network_id=network_id)
    await adapter.start_container(container_id)

    async def answers() -> str | None:
        observed = await adapter.inspect_container(container_id)
        if observed is None or observed.host_port is None or observed.health != "healthy":
            return None
        return await asyncio.to_thread(http_get, f"http://127.0.0.1:{observed.host_port}/health")

    body = await eventually(answers, within=30, what=f"{plan.name} healthy and answering /health")
    assert body.strip() == "ok"
    return container_id


def proc_status(client: docker.DockerClient, container_id: str) -> dict[str, str]:
    """`/proc/self/status` of a process exec'd in the container, as name -> value."""
    result = client.containers.get(container_id).exec_run(["cat", "/proc/self/status"])
    assert result.exit_code == 0, result.output
    lines = result.output.decode().splitlines()
    return {name: value.strip() for name, _, value in (line.partition(":") for line in lines)}


async def test_tier1_container_runs_its_agent_without_capabilities_and_with_its_caps(
    adapter: DockerAdapter,
    registries: Registries,
    scope: Scope,
    workspace_uids: list[str],
    docker_engine: Any,
    docker_client: docker.DockerClient,
) -> None:
    plan = tier_plan(1, registries, scope, workspace_uids)
    container_id = await run_planned_agent(adapter, plan)

    host = docker_engine.inspect_container(container_id)["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert not host["CapAdd"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["PidsLimit"] == 256
    assert (host["Memory"], host["NanoCpus"]) == (256 * MIB, 500_000_000)
    assert host["ReadonlyRootfs"] is True
    assert host["Privileged"] is False

    status = proc_status(docker_client, container_id)
    assert status["CapEff"] == "0000000000000000"
    assert status["CapPrm"] == "0000000000000000"
    assert status["CapBnd"] == "0000000000000000"
    assert status["NoNewPrivs"] == "1"


async def test_tier2_container_runs_its_agent_with_the_reduced_capability_set(
    adapter: DockerAdapter,
    registries: Registries,
    scope: Scope,
    workspace_uids: list[str],
    docker_engine: Any,
    docker_client: docker.DockerClient,
) -> None:
    plan = tier_plan(2, registries, scope, workspace_uids)
    container_id = await run_planned_agent(adapter, plan)

    host = docker_engine.inspect_container(container_id)["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert host["CapAdd"] == TIER2_CAPS
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["PidsLimit"] == 1024
    assert (host["Memory"], host["NanoCpus"]) == (512 * MIB, 1_000_000_000)
    assert host["Privileged"] is False

    # Root in the container holds exactly those eight: Docker's default set would be 00000000a80425fb.
    status = proc_status(docker_client, container_id)
    assert status["CapEff"] == status["CapBnd"] == TIER2_CAP_MASK == "00000000000004fb"
    assert status["NoNewPrivs"] == "1"
