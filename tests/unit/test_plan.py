"""The container plan: a pure function of spec, resolved inputs and settings, with a stable config hash."""

from __future__ import annotations

import dataclasses
from typing import Any

import docker
import pytest

from controller.api.workspace import WorkspaceMount, WorkspaceSpec
from controller.core.labels import CONFIG_HASH_LABEL, MANAGED_LABEL, UID_LABEL
from controller.core.plan import (
    ContainerPlan,
    PlanError,
    ResolvedInputs,
    compute_config_hash,
    needs_session_reset,
    plan_workspace,
    to_docker_create_kwargs,
)
from controller.settings import ControllerSettings

UID = "3f2a9c1e-8b7d-4e21-9a0f-123456789abc"
SETTINGS = ControllerSettings(instance="test")
INPUTS = ResolvedInputs(
    env=(("OPENAI_API_KEY", "sk-secret"),),
    config_maps=({"config.yaml": "name: alice\n"},),
    auth_token="token-1",
)


def make_plan(
    spec: dict[str, Any] | None = None,
    inputs: ResolvedInputs = INPUTS,
    settings: ControllerSettings = SETTINGS,
) -> ContainerPlan:
    result = plan_workspace(
        UID, "team-a", "alice", WorkspaceSpec.model_validate(spec or {}), inputs, settings
    )
    assert isinstance(result, ContainerPlan), result
    return result


def test_default_plan_matches_the_go_provisioner_container() -> None:
    plan = make_plan()
    assert plan.name == "ws-3f2a9c1e-8b7"
    assert plan.image == "ghcr.io/molecule-ai/workspace-template-langgraph:latest"
    assert plan.restart_policy == "unless-stopped"
    assert plan.exposed_port == "8000/tcp"
    assert [(b.container_port, b.host_ip, b.host_port) for b in plan.port_bindings] == [
        ("8000/tcp", "127.0.0.1", "")
    ]
    assert plan.network == plan.network_mode == "molecule-monorepo-net"
    assert plan.aliases == ("ws-3f2a9c1e-8b7",)
    assert plan.binds == ("ws-3f2a9c1e-8b7-configs:/configs", "ws-3f2a9c1e-8b7-workspace:/workspace")
    assert plan.env[0] == f"WORKSPACE_ID={UID}"
    assert plan.env[-1] == "OPENAI_API_KEY=sk-secret"
    assert (plan.memory, plan.nano_cpus, plan.privileged) == (512 * 1024 * 1024, 1_000_000_000, False)
    assert plan.internal_url == "http://ws-3f2a9c1e-8b7:8000"
    assert plan.fixed_endpoint is None
    assert plan.platform is None


def test_volumes_are_labeled_and_only_those_mounted_are_planned() -> None:
    plan = make_plan()
    assert [v.name for v in plan.volumes] == ["ws-3f2a9c1e-8b7-configs", "ws-3f2a9c1e-8b7-workspace"]
    for volume in plan.volumes:
        assert volume.labels[MANAGED_LABEL] == "true"
        assert volume.labels[UID_LABEL] == UID
        assert CONFIG_HASH_LABEL not in volume.labels
    claude = make_plan({"runtime": "claude-code"})
    assert claude.volumes[-1].name == "ws-3f2a9c1e-8b7-claude-sessions"
    assert claude.session_volume == "ws-3f2a9c1e-8b7-claude-sessions"
    assert [v.name for v in make_plan({"tier": 1, "runtime": "claude-code"}).volumes] == [
        "ws-3f2a9c1e-8b7-configs"
    ]
    assert len(make_plan({"workspace": {"hostPath": "/srv/p", "access": "read_write"}}).volumes) == 1


def test_container_labels_carry_owner_instance_and_hash() -> None:
    plan = make_plan()
    assert plan.labels["molecule.ai/controller-instance"] == "test"
    assert plan.labels["molecule.ai/workspace-namespace"] == "team-a"
    assert plan.labels["molecule.ai/workspace-name"] == "alice"
    assert plan.labels[CONFIG_HASH_LABEL] == plan.config_hash


def test_config_files_include_the_token_and_the_tar_carries_them() -> None:
    plan = make_plan()
    assert plan.config_files == {"config.yaml": b"name: alice\n", ".auth_token": b"token-1"}
    assert plan.config_tar()


def test_tier4_joins_no_network_and_publishes_no_port() -> None:
    plan = make_plan({"tier": 4})
    assert plan.network is None
    assert plan.network_mode == "host"
    assert plan.port_bindings == ()
    assert plan.aliases == ()
    assert plan.fixed_endpoint == "http://127.0.0.1:8000"
    assert plan.internal_url is None
    assert plan.binds[-1] == "/var/run/docker.sock:/var/run/docker.sock"


def test_spec_platform_url_and_awareness_reach_the_env() -> None:
    plan = make_plan({"platformURL": "http://p:1", "awareness": {"namespace": "n", "url": "http://a"}})
    assert "PLATFORM_URL=http://p:1" in plan.env
    assert "AWARENESS_NAMESPACE=n" in plan.env


def test_image_platform_setting_is_passed_through() -> None:
    assert make_plan(settings=ControllerSettings(image_platform="linux/amd64")).platform == "linux/amd64"


def test_pull_credentials_are_picked_for_the_image_registry() -> None:
    inputs = dataclasses.replace(
        INPUTS, pull_secrets=({"auths": {"ghcr.io": {"username": "bot", "password": "pw"}}},)
    )
    plan = make_plan({"imagePullPolicy": "Always"}, inputs)
    assert plan.pull_auth is not None
    assert plan.pull_auth.username == "bot"
    assert plan.image_pull_policy == "Always"


def plan_error(spec: dict[str, Any], inputs: ResolvedInputs = INPUTS) -> PlanError:
    result = plan_workspace(UID, "ns", "n", WorkspaceSpec.model_validate(spec), inputs, SETTINGS)
    assert isinstance(result, PlanError), result
    return result


def test_unknown_runtime_is_a_plan_error() -> None:
    assert plan_error({"runtime": "mystery"}).reason == "UnknownRuntime"


def test_missing_config_yaml_is_a_plan_error() -> None:
    error = plan_error({}, dataclasses.replace(INPUTS, config_maps=()))
    assert error.reason == "NoConfigSource"
    assert "no config.yaml source" in error.message


def test_reserved_env_from_a_bypassed_schema_is_a_plan_error() -> None:
    error = plan_error({}, dataclasses.replace(INPUTS, env=(("TIER", "4"),)))
    assert (error.reason, error.message) == (
        "InvalidSpec",
        "env name TIER is set by the controller and cannot be overridden",
    )


def test_invalid_workspace_mount_that_bypassed_validation_is_a_plan_error() -> None:
    mount = WorkspaceMount.model_construct(host_path=None, access="read_only")
    spec = WorkspaceSpec.model_construct(workspace=mount)
    result = plan_workspace(UID, "ns", "n", spec, INPUTS, SETTINGS)
    assert isinstance(result, PlanError)
    assert result.reason == "InvalidSpec"


# --- config hash -------------------------------------------------------------------------------------


def test_same_inputs_give_the_same_hash() -> None:
    assert make_plan().config_hash == make_plan().config_hash
    assert len(make_plan().config_hash) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"env": (("OPENAI_API_KEY", "sk-rotated"),)},
        {"config_maps": ({"config.yaml": "name: bob\n"},)},
        {"auth_token": "token-2"},
    ],
)
def test_secret_or_config_changes_change_the_hash(change: dict[str, Any]) -> None:
    assert make_plan(inputs=dataclasses.replace(INPUTS, **change)).config_hash != make_plan().config_hash


@pytest.mark.parametrize(
    "spec",
    [
        {"tier": 3},
        {"image": "ghcr.io/x/y:1"},
        {"restartRequestedAt": "2026-05-01T00:00:00Z"},
        {"workspace": {"hostPath": "/srv/p", "access": "read_only"}},
        {"platformURL": "http://elsewhere:1"},
    ],
)
def test_spec_changes_that_need_a_new_container_change_the_hash(spec: dict[str, Any]) -> None:
    assert make_plan(spec).config_hash != make_plan().config_hash


@pytest.mark.parametrize(
    "spec",
    [
        {"suspend": True},
        {"imagePullPolicy": "Always"},
        {"imagePullSecrets": [{"name": "regcred"}]},
        {"session": {"resetRequestedAt": "r1"}},  # no session volume outside claude-code
    ],
)
def test_fields_that_do_not_change_the_container_keep_the_hash(spec: dict[str, Any]) -> None:
    assert make_plan(spec).config_hash == make_plan().config_hash


def test_deletion_policy_is_labelled_on_container_and_volumes_and_hashed() -> None:
    # The orphan sweep reads the policy from the container's label, so the label must follow the spec.
    retain = make_plan({"deletionPolicy": "Retain"})
    assert retain.labels["molecule.ai/deletion-policy"] == "Retain"
    assert all(v.labels["molecule.ai/deletion-policy"] == "Retain" for v in retain.volumes)
    assert make_plan().labels["molecule.ai/deletion-policy"] == "Delete"
    assert retain.config_hash != make_plan().config_hash


def test_pull_secrets_do_not_change_the_hash() -> None:
    inputs = dataclasses.replace(
        INPUTS, pull_secrets=({"auths": {"ghcr.io": {"username": "u", "password": "p"}}},)
    )
    assert make_plan(inputs=inputs).config_hash == make_plan().config_hash


def test_session_reset_changes_the_hash_for_claude_code() -> None:
    base = make_plan({"runtime": "claude-code"})
    reset = make_plan({"runtime": "claude-code", "session": {"resetRequestedAt": "r1"}})
    assert base.config_hash != reset.config_hash
    assert reset.session_reset_token == "r1"


def test_status_only_fields_do_not_exist_in_the_plan_inputs() -> None:
    # The plan takes the spec alone; anything in status cannot reach the hash.
    assert "status" not in WorkspaceSpec.model_fields


def test_no_secret_text_appears_in_labels_or_repr() -> None:
    plan = make_plan()
    assert all("sk-secret" not in value and "token-1" not in value for value in plan.labels.values())
    assert "sk-secret" not in repr(plan)
    assert "token-1" not in repr(plan)
    assert "sk-secret" not in repr(INPUTS)
    assert "token-1" not in repr(INPUTS)


def test_needs_session_reset_once_per_token_for_claude_code() -> None:
    plan = make_plan({"runtime": "claude-code", "session": {"resetRequestedAt": "r1"}})
    assert needs_session_reset(plan, None)
    assert not needs_session_reset(plan, "r1")
    assert needs_session_reset(plan, "r0")
    assert not needs_session_reset(make_plan({"runtime": "claude-code"}), None)
    assert not needs_session_reset(make_plan({"session": {"resetRequestedAt": "r1"}}), None)
    sandboxed = make_plan({"runtime": "claude-code", "tier": 1, "session": {"resetRequestedAt": "r1"}})
    assert not needs_session_reset(sandboxed, None)


def test_hash_can_be_recomputed_from_the_plan() -> None:
    plan = make_plan({"runtime": "claude-code", "restartRequestedAt": "r"})
    assert compute_config_hash(plan) == plan.config_hash
    assert plan.restart_requested_at == "r"


# --- docker-py shape ---------------------------------------------------------------------------------


class CapturingClient(docker.APIClient):  # type: ignore[misc]
    """docker-py's real argument handling, with the HTTP call replaced by a capture."""

    captured: dict[str, Any]

    def create_container_from_config(
        self, config: Any, name: Any = None, platform: Any = None
    ) -> dict[str, Any]:
        self.captured = {"config": config, "name": name, "platform": platform}
        return {"Id": "x"}


def create_with_docker_py(plan: ContainerPlan) -> dict[str, Any]:
    client = CapturingClient(base_url="unix:///nonexistent.sock", version="1.41")
    kwargs = to_docker_create_kwargs(plan)
    host_config = client.create_host_config(**kwargs["host_config"])
    endpoints = {net: client.create_endpoint_config(**kw) for net, kw in kwargs["endpoints_config"].items()}
    networking = client.create_networking_config(endpoints) if endpoints else None
    client.create_container(**kwargs["container"], host_config=host_config, networking_config=networking)
    return client.captured


def test_docker_kwargs_produce_the_go_provisioner_container_config() -> None:
    plan = make_plan(settings=ControllerSettings(instance="test", image_platform="linux/amd64"))
    captured = create_with_docker_py(plan)
    config = captured["config"]
    assert captured["name"] == "ws-3f2a9c1e-8b7"
    assert captured["platform"] == "linux/amd64"
    assert config["Image"] == plan.image
    assert config["Env"] == list(plan.env)
    assert config["Labels"] == dict(plan.labels)
    assert config["ExposedPorts"] == {"8000/tcp": {}}
    host = config["HostConfig"]
    assert host["Binds"] == list(plan.binds)
    assert host["PortBindings"] == {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert host["RestartPolicy"] == {"Name": "unless-stopped"}
    assert host["NetworkMode"] == "molecule-monorepo-net"
    assert host["Memory"] == 512 * 1024 * 1024
    assert host["NanoCpus"] == 1_000_000_000
    assert host["ReadonlyRootfs"] is False
    assert config["NetworkingConfig"] == {
        "EndpointsConfig": {"molecule-monorepo-net": {"Aliases": ["ws-3f2a9c1e-8b7"]}}
    }


def test_docker_kwargs_for_tier1_and_tier4() -> None:
    tier1 = create_with_docker_py(make_plan({"tier": 1}))["config"]["HostConfig"]
    assert tier1["ReadonlyRootfs"] is True
    assert tier1["Tmpfs"] == {"/tmp": "rw,noexec,nosuid,size=64m"}
    assert "Memory" not in tier1
    assert "NanoCpus" not in tier1
    tier4 = create_with_docker_py(make_plan({"tier": 4}))["config"]
    assert tier4["HostConfig"]["NetworkMode"] == "host"
    assert tier4["HostConfig"]["Privileged"] is True
    assert tier4["HostConfig"]["PidMode"] == "host"
    assert "PortBindings" not in tier4["HostConfig"]
    assert tier4.get("NetworkingConfig") is None
