"""The container plan: a pure function of spec, resolved inputs and settings, with a stable config hash."""

from __future__ import annotations

import dataclasses
import io
import tarfile
from collections.abc import Mapping
from typing import Any

import pytest

from controller.api.workspace import WorkspaceMount, WorkspaceSpec
from controller.core.causes import Cause
from controller.core.identity import WorkspaceRef
from controller.core.labels import CONFIG_HASH_LABEL, MANAGED_LABEL, UID_LABEL
from controller.core.plan import (
    ResolvedInputs,
    compute_config_hash,
    needs_session_reset,
    plan_workspace,
)
from controller.core.policy import Grant
from controller.docker.archive import build_tar
from controller.port.values import ContainerSpec, File, FileTree
from controller.settings import ControllerSettings
from tests.support.plans import ALICE, INPUTS, SETTINGS, UID, make_plan, spec_for


def test_default_plan_matches_the_go_provisioner_container() -> None:
    plan = make_plan()
    container = plan.container
    assert plan.name == container.name == "ws-3f2a9c1e-8b7"
    assert plan.image == container.image == "ghcr.io/molecule-ai/workspace-template-langgraph:latest"
    assert container.restart_policy == "unless-stopped"
    assert container.exposed_port == "8000/tcp"
    assert [(b.container_port, b.host_ip, b.host_port) for b in container.port_bindings] == [
        ("8000/tcp", "127.0.0.1", "")
    ]
    assert container.network == container.network_mode == "molecule-monorepo-net"
    assert container.aliases == ("ws-3f2a9c1e-8b7",)
    assert container.binds == ("ws-3f2a9c1e-8b7-configs:/configs", "ws-3f2a9c1e-8b7-workspace:/workspace")
    assert container.env[0] == f"WORKSPACE_ID={UID}"
    assert container.env[-1] == "OPENAI_API_KEY=sk-secret"
    assert (container.memory, container.nano_cpus, container.privileged) == (
        512 * 1024 * 1024,
        1_000_000_000,
        False,
    )
    assert plan.internal_url == "http://ws-3f2a9c1e-8b7:8000"
    assert plan.fixed_endpoint is None
    assert container.platform is None
    assert plan.workspace == ALICE


TIER2_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "NET_BIND_SERVICE")


@pytest.mark.parametrize(
    ("tier", "cap_drop", "cap_add", "security_opt", "pids", "memory_mb", "nano_cpus"),
    [
        (1, ("ALL",), (), ("no-new-privileges",), 256, 256, 500_000_000),
        (2, ("ALL",), TIER2_CAPS, ("no-new-privileges",), 1024, 512, 1_000_000_000),
        (3, (), (), (), 4096, 2048, 2_000_000_000),
        (4, (), (), (), 8192, 4096, 4_000_000_000),
    ],
)
def test_the_container_carries_its_tiers_hardening(
    tier: int,
    cap_drop: tuple[str, ...],
    cap_add: tuple[str, ...],
    security_opt: tuple[str, ...],
    pids: int,
    memory_mb: int,
    nano_cpus: int,
) -> None:
    container = make_plan({"tier": tier}).container
    assert container.cap_drop == cap_drop
    assert container.cap_add == cap_add
    assert container.security_opt == security_opt
    assert container.pids_limit == pids
    assert (container.memory, container.nano_cpus) == (memory_mb * 1024 * 1024, nano_cpus)


def test_tier_settings_reach_the_container() -> None:
    settings = ControllerSettings.from_env(
        {"WC_INSTANCE": "test", "TIER1_MEMORY_MB": "64", "TIER1_CPU_SHARES": "128", "TIER1_PIDS_LIMIT": "50"}
    )
    container = make_plan({"tier": 1}, settings=settings).container
    assert (container.memory, container.nano_cpus, container.pids_limit) == (
        64 * 1024 * 1024,
        125_000_000,
        50,
    )


@pytest.mark.parametrize(
    ("tier", "env"),
    [
        (1, {"TIER1_PIDS_LIMIT": "128"}),
        (2, {"TIER2_PIDS_LIMIT": "2048"}),
        (3, {"TIER3_PIDS_LIMIT": "100"}),
        (4, {"TIER4_PIDS_LIMIT": "100"}),
        (1, {"TIER1_MEMORY_MB": "512"}),
        (1, {"TIER1_CPU_SHARES": "1024"}),
    ],
)
def test_changing_a_tiers_setting_changes_its_hash_and_only_its(tier: int, env: dict[str, str]) -> None:
    changed_settings = ControllerSettings.from_env({"WC_INSTANCE": "test", **env})
    default_settings = ControllerSettings.from_env({"WC_INSTANCE": "test"})
    before = make_plan({"tier": tier}, settings=default_settings)
    after = make_plan({"tier": tier}, settings=changed_settings)
    assert after.config_hash != before.config_hash
    other = 2 if tier != 2 else 1
    untouched = make_plan({"tier": other}, settings=changed_settings)
    assert untouched.config_hash == make_plan({"tier": other}, settings=default_settings).config_hash


def test_a_malformed_pids_setting_keeps_the_default_and_the_hash() -> None:
    settings = ControllerSettings.from_env({"WC_INSTANCE": "test", "TIER2_PIDS_LIMIT": "lots"})
    assert make_plan(settings=settings).config_hash == make_plan().config_hash
    assert make_plan(settings=settings).container.pids_limit == 1024


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
    labels = plan.container.labels
    assert labels["molecule.ai/controller-instance"] == "test"
    assert labels["molecule.ai/workspace-namespace"] == "team-a"
    assert labels["molecule.ai/workspace-name"] == "alice"
    assert labels[CONFIG_HASH_LABEL] == plan.config_hash


def test_config_files_include_the_token_and_the_tar_carries_them() -> None:
    plan = make_plan()
    assert plan.files == FileTree(
        root="/configs",
        files={"config.yaml": File(b"name: alice\n", 0o644), ".auth_token": File(b"token-1", 0o600)},
    )
    with tarfile.open(fileobj=io.BytesIO(build_tar(plan.files.files))) as archive:
        assert sorted(archive.getnames()) == [".auth_token", "config.yaml"]


def test_tier4_joins_no_network_and_publishes_no_port() -> None:
    plan = make_plan({"tier": 4}, grant=Grant(tiers=frozenset({1, 2, 4}), docker_socket=True))
    assert plan.container.network is None
    assert plan.container.network_mode == "host"
    assert plan.container.port_bindings == ()
    assert plan.container.aliases == ()
    assert plan.fixed_endpoint == "http://127.0.0.1:8000"
    assert plan.internal_url is None
    assert plan.container.binds[-1] == "/var/run/docker.sock:/var/run/docker.sock"


def test_tier4_gets_the_docker_socket_only_when_granted_and_the_grant_is_in_the_hash() -> None:
    without = make_plan({"tier": 4}, grant=Grant(tiers=frozenset({1, 2, 4})))
    with_socket = make_plan({"tier": 4}, grant=Grant(tiers=frozenset({1, 2, 4}), docker_socket=True))
    assert "/var/run/docker.sock:/var/run/docker.sock" not in without.container.binds
    assert without.config_hash != with_socket.config_hash  # granting it later recreates the container


def test_spec_platform_url_and_awareness_reach_the_env() -> None:
    plan = make_plan({"platformURL": "http://p:1", "awareness": {"namespace": "n", "url": "http://a"}})
    assert "PLATFORM_URL=http://p:1" in plan.container.env
    assert "AWARENESS_NAMESPACE=n" in plan.container.env


def test_image_platform_setting_is_passed_through() -> None:
    plan = make_plan(settings=ControllerSettings(image_platform="linux/amd64"))
    assert plan.container.platform == "linux/amd64"


def test_pull_credentials_are_picked_for_the_image_registry() -> None:
    inputs = dataclasses.replace(
        INPUTS, pull_secrets=({"auths": {"ghcr.io": {"username": "bot", "password": "pw"}}},)
    )
    plan = make_plan({"imagePullPolicy": "Always"}, inputs)
    assert plan.pull_credentials is not None
    assert plan.pull_credentials.username == "bot"
    assert plan.image_pull_policy == "Always"


OTHER = WorkspaceRef(uid=UID, namespace="ns", name="n")


def plan_error(spec: dict[str, Any], inputs: ResolvedInputs = INPUTS) -> Cause:
    result = plan_workspace(OTHER, WorkspaceSpec.model_validate(spec_for(spec, inputs)), inputs, SETTINGS)
    assert isinstance(result, Cause), result
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
    result = plan_workspace(OTHER, spec, INPUTS, SETTINGS)
    assert isinstance(result, Cause)
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
    assert retain.container.labels["molecule.ai/deletion-policy"] == "Retain"
    assert all(v.labels["molecule.ai/deletion-policy"] == "Retain" for v in retain.volumes)
    assert make_plan().container.labels["molecule.ai/deletion-policy"] == "Delete"
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
    labels = plan.container.labels.values()
    assert all("sk-secret" not in value and "token-1" not in value for value in labels)
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
    recomputed = compute_config_hash(
        plan.container, plan.files, plan.restart_requested_at, plan.session_reset_token
    )
    assert recomputed == plan.config_hash
    assert plan.restart_requested_at == "r"


def changed(value: Any) -> Any:
    """Some other value of the same kind, for any field of a ContainerSpec."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "-changed"
    if value is None:
        return "changed"
    if isinstance(value, tuple):
        return (*value, "changed")
    if isinstance(value, Mapping):
        return {**value, "changed": "1"}
    raise AssertionError(f"no other value for {value!r}")


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(ContainerSpec)])
def test_every_field_the_runtime_is_told_at_create_is_hashed(name: str) -> None:
    plan = make_plan({"runtime": "claude-code", "tier": 1})
    container = dataclasses.replace(plan.container, **{name: changed(getattr(plan.container, name))})
    recomputed = compute_config_hash(container, plan.files, plan.restart_requested_at, None)
    assert recomputed != plan.config_hash


def test_file_modes_are_hashed_and_the_hash_label_is_not() -> None:
    plan = make_plan()
    files = {**plan.files.files, "config.yaml": File(b"name: alice\n", 0o600)}
    regrouped = FileTree(plan.files.root, files)
    assert compute_config_hash(plan.container, regrouped, None, None) != plan.config_hash
    relabelled = dataclasses.replace(
        plan.container, labels={**plan.container.labels, CONFIG_HASH_LABEL: "something else"}
    )
    assert compute_config_hash(relabelled, plan.files, None, None) == plan.config_hash
