"""A planned `ContainerSpec` as docker-py's low-level API receives it: the real SDK builds the request
body, only the HTTP call is replaced by a capture."""

from __future__ import annotations

import dataclasses
from typing import Any

import docker

from controller.api.workspace import WorkspaceSpec
from controller.core.identity import WorkspaceRef
from controller.core.plan import ContainerPlan, ResolvedInputs, plan_workspace
from controller.docker.create_args import create_args
from controller.port.values import ContainerSpec
from controller.settings import ControllerSettings
from tests.support.plans import spec_for

UID = "3f2a9c1e-8b7d-4e21-9a0f-123456789abc"
ALICE = WorkspaceRef(uid=UID, namespace="team-a", name="alice")
SETTINGS = ControllerSettings(instance="test")
INPUTS = ResolvedInputs(
    env=(("OPENAI_API_KEY", "sk-secret"),),
    config_maps=({"config.yaml": "name: alice\n"},),
    auth_token="token-1",
)


def make_plan(spec: dict[str, Any] | None = None, settings: ControllerSettings = SETTINGS) -> ContainerPlan:
    result = plan_workspace(ALICE, WorkspaceSpec.model_validate(spec_for(spec, INPUTS)), INPUTS, settings)
    assert isinstance(result, ContainerPlan), result
    return result


class CapturingClient(docker.APIClient):  # type: ignore[misc]
    """docker-py's real argument handling, with the HTTP call replaced by a capture."""

    captured: dict[str, Any]

    def create_container_from_config(
        self, config: Any, name: Any = None, platform: Any = None
    ) -> dict[str, Any]:
        self.captured = {"config": config, "name": name, "platform": platform}
        return {"Id": "x"}


def create_with_docker_py(spec: ContainerSpec, network_id: str | None = None) -> dict[str, Any]:
    """What `DockerAdapter.create_container` does with the arguments, against the real SDK."""
    client = CapturingClient(base_url="unix:///nonexistent.sock", version="1.41")
    args = create_args(spec, network_id)
    host_config = client.create_host_config(**args.host_config)
    endpoints = {net: client.create_endpoint_config(**kw) for net, kw in args.endpoints.items()}
    networking = client.create_networking_config(endpoints) if endpoints else None
    client.create_container(
        name=args.name,
        platform=args.platform,
        host_config=host_config,
        networking_config=networking,
        **args.container,
    )
    return client.captured


def test_docker_kwargs_produce_the_go_provisioner_container_config() -> None:
    plan = make_plan(settings=ControllerSettings(instance="test", image_platform="linux/amd64"))
    spec = plan.container
    captured = create_with_docker_py(spec)
    config = captured["config"]
    assert captured["name"] == "ws-3f2a9c1e-8b7"
    assert captured["platform"] == "linux/amd64"
    assert config["Image"] == plan.image
    assert config["Env"] == list(spec.env)
    assert config["Labels"] == dict(spec.labels)
    assert config["ExposedPorts"] == {"8000/tcp": {}}
    host = config["HostConfig"]
    assert host["Binds"] == list(spec.binds)
    assert host["PortBindings"] == {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert host["RestartPolicy"] == {"Name": "unless-stopped"}
    assert host["NetworkMode"] == "molecule-monorepo-net"
    assert host["Memory"] == 512 * 1024 * 1024
    assert host["NanoCpus"] == 1_000_000_000
    assert host["ReadonlyRootfs"] is False
    assert host["CapDrop"] == ["ALL"]
    assert host["CapAdd"] == [
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "NET_BIND_SERVICE",
    ]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["PidsLimit"] == 1024
    assert config["NetworkingConfig"] == {
        "EndpointsConfig": {"molecule-monorepo-net": {"Aliases": ["ws-3f2a9c1e-8b7"]}}
    }


def test_docker_kwargs_for_tier1_and_tier4() -> None:
    tier1 = create_with_docker_py(make_plan({"tier": 1}).container)["config"]["HostConfig"]
    assert tier1["ReadonlyRootfs"] is True
    assert tier1["Tmpfs"] == {"/tmp": "rw,noexec,nosuid,size=64m"}
    assert tier1["Memory"] == 256 * 1024 * 1024
    assert tier1["NanoCpus"] == 500_000_000
    assert tier1["CapDrop"] == ["ALL"]
    assert "CapAdd" not in tier1
    assert tier1["SecurityOpt"] == ["no-new-privileges"]
    assert tier1["PidsLimit"] == 256
    tier4 = create_with_docker_py(make_plan({"tier": 4}).container)["config"]
    assert tier4["HostConfig"]["NetworkMode"] == "host"
    assert tier4["HostConfig"]["Privileged"] is True
    assert tier4["HostConfig"]["PidMode"] == "host"
    assert "PortBindings" not in tier4["HostConfig"]
    assert tier4.get("NetworkingConfig") is None
    # Privileged holds every capability: nothing dropped or added, but the pids limit is sent.
    assert tier4["HostConfig"]["PidsLimit"] == 8192
    assert not {"CapDrop", "CapAdd", "SecurityOpt"} & set(tier4["HostConfig"])


def test_tier3_sends_only_its_pids_limit_of_the_hardening() -> None:
    host = create_with_docker_py(make_plan({"tier": 3}).container)["config"]["HostConfig"]
    assert host["PidsLimit"] == 4096
    assert host["Privileged"] is True
    assert not {"CapDrop", "CapAdd", "SecurityOpt"} & set(host)


def test_a_pids_setting_reaches_the_host_config() -> None:
    settings = ControllerSettings.from_env({"WC_INSTANCE": "test", "TIER2_PIDS_LIMIT": "333"})
    host = create_with_docker_py(make_plan(settings=settings).container)["config"]["HostConfig"]
    assert host["PidsLimit"] == 333


def test_empty_hardening_fields_send_nothing_and_keep_dockers_defaults() -> None:
    spec = dataclasses.replace(make_plan().container, cap_drop=(), cap_add=(), security_opt=(), pids_limit=0)
    host = create_with_docker_py(spec)["config"]["HostConfig"]
    assert not {"CapDrop", "CapAdd", "SecurityOpt", "PidsLimit"} & set(host)


def test_the_container_joins_the_network_by_id_when_one_is_given() -> None:
    # A name that two networks share is ambiguous at start; the ID ensure_network returned is not.
    captured = create_with_docker_py(make_plan().container, network_id="net-1234")
    assert captured["config"]["HostConfig"]["NetworkMode"] == "net-1234"
    assert captured["config"]["NetworkingConfig"] == {
        "EndpointsConfig": {"net-1234": {"Aliases": ["ws-3f2a9c1e-8b7"]}}
    }
    assert captured["platform"] is None


def test_a_network_id_does_not_attach_a_host_network_container() -> None:
    captured = create_with_docker_py(make_plan({"tier": 4}).container, network_id="net-1234")
    assert captured["config"]["HostConfig"]["NetworkMode"] == "host"
    assert captured["config"].get("NetworkingConfig") is None
