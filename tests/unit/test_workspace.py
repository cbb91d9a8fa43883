"""The Workspace API models: defaults, wire names, and the Python mirror of every CEL rule."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from controller.api.workspace import (
    RESERVED_ENV_NAMES,
    ContainerStatus,
    Workspace,
    WorkspaceSpec,
    WorkspaceStatus,
    config_path_problem,
    host_path_problem,
    workspace_access_problem,
)

DIGEST = "a" * 64


def spec(**fields: Any) -> WorkspaceSpec:
    return WorkspaceSpec.model_validate(fields)


def test_empty_spec_gets_the_documented_defaults() -> None:
    s = spec()
    assert s.runtime == "langgraph"
    assert s.tier == 2
    assert s.image is None
    assert s.image_pull_policy is None
    assert s.workspace.access == "none"
    assert s.workspace.host_path is None
    assert s.suspend is False
    assert s.deletion_policy == "Delete"
    assert s.env == ()
    assert s.config.files == ()


def test_spec_reads_camel_case_and_special_aliases() -> None:
    s = spec(
        platformURL="http://platform:8080",
        imagePullPolicy="Always",
        restartRequestedAt="r1",
        deletionPolicy="Retain",
        imagePullSecrets=[{"name": "regcred"}],
        authToken={"secretRef": {"name": "tok"}},
        session={"resetRequestedAt": "s1"},
    )
    assert s.platform_url == "http://platform:8080"
    assert s.image_pull_policy == "Always"
    assert s.restart_requested_at == "r1"
    assert s.deletion_policy == "Retain"
    assert s.image_pull_secrets[0].name == "regcred"
    assert s.auth_token is not None
    assert s.auth_token.secret_ref is not None
    assert s.auth_token.secret_ref.key == "token"
    assert s.session.reset_requested_at == "s1"


def test_spec_is_immutable() -> None:
    s = spec()
    with pytest.raises(ValidationError):
        s.tier = 3  # type: ignore[misc]


@pytest.mark.parametrize("name", [n for n in RESERVED_ENV_NAMES])
def test_env_rejects_every_platform_variable(name: str) -> None:
    with pytest.raises(ValidationError, match=f"env name {name} is set by the controller"):
        spec(env=[{"name": name, "value": "x"}])


def test_env_allows_overriding_pythonpath() -> None:
    assert spec(env=[{"name": "PYTHONPATH", "value": "/custom"}]).env[0].value == "/custom"


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "A"},
        {"name": "A", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
    ],
)
def test_env_needs_exactly_one_of_value_and_value_from(entry: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of value or valueFrom"):
        spec(env=[entry])


@pytest.mark.parametrize(
    "value_from",
    [{}, {"secretKeyRef": {"name": "s", "key": "k"}, "configMapKeyRef": {"name": "c", "key": "k"}}],
)
def test_value_from_needs_exactly_one_reference(value_from: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of secretKeyRef or configMapKeyRef"):
        spec(env=[{"name": "A", "valueFrom": value_from}])


def test_env_value_from_secret_defaults_to_required() -> None:
    s = spec(env=[{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}])
    assert s.env[0].value_from is not None
    assert s.env[0].value_from.secret_key_ref is not None
    assert s.env[0].value_from.secret_key_ref.optional is False


@pytest.mark.parametrize("name", ["1A", "A=B", "A-B", ""])
def test_env_name_must_be_a_c_identifier(name: str) -> None:
    with pytest.raises(ValidationError):
        spec(env=[{"name": name, "value": "x"}])


def test_env_names_are_unique_like_the_list_map_in_the_crd() -> None:
    with pytest.raises(ValidationError, match="duplicate env name"):
        spec(env=[{"name": "A", "value": "1"}, {"name": "A", "value": "2"}])


@pytest.mark.parametrize(
    ("access", "host_path", "ok"),
    [
        # The Go provisioner's TestValidateWorkspaceAccess cases, in this API's vocabulary.
        ("", None, True),
        ("none", None, True),
        ("none", "/data/x", True),
        ("read_only", "/data/x", True),
        ("read_write", "/data/x", True),
        ("read_only", None, False),
        ("read_write", None, False),
        ("everything", "/data/x", False),
    ],
)
def test_workspace_access_validation_matches_the_go_provisioner(
    access: str, host_path: str | None, ok: bool
) -> None:
    assert (workspace_access_problem(access, host_path) is None) is ok


def test_workspace_access_message_names_the_access_and_the_missing_field() -> None:
    assert (
        workspace_access_problem("read_only", None)
        == "workspace.access read_only requires workspace.hostPath"
    )


@pytest.mark.parametrize("access", ["read_only", "read_write"])
def test_spec_rejects_host_access_without_host_path(access: str) -> None:
    with pytest.raises(ValidationError, match=rf"workspace\.access {access} requires workspace\.hostPath"):
        spec(workspace={"access": access})


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("data", "absolute"),
        ("/data/../etc", "'..'"),
        ("/data/a..b", "'..'"),
        ("//etc", "clean path"),
        ("/./etc", "clean path"),
        ("/data/.", "clean path"),
        ("/etc", "/etc"),
        ("/etc/", "/etc"),
        ("/var/lib/docker", "/var"),
        ("/proc", "/proc"),
        ("/sys/fs", "/sys"),
        ("/dev/sda", "/dev"),
        ("/boot", "/boot"),
        ("/sbin", "/sbin"),
        ("/bin/x", "/bin"),
        ("/lib", "/lib"),
        ("/usr/local/src", "/usr"),
    ],
)
def test_host_path_is_refused_like_the_go_provisioner(path: str, fragment: str) -> None:
    problem = host_path_problem(path)
    assert problem is not None
    assert fragment in problem


@pytest.mark.parametrize(
    "path", ["/home/u/project", "/etcetera", "/library", "/srv/data", "/opt/x", "/running"]
)
def test_host_path_outside_system_directories_is_allowed(path: str) -> None:
    assert host_path_problem(path) is None


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/", "must not end with '/'"),
        ("/srv/data/", "must not end with '/'"),
        ("/run", "/run"),
        ("/run/docker.sock", "/run"),
        ("/root", "/root"),
        ("/root/.ssh", "/root"),
    ],
)
def test_the_host_root_runtime_sockets_and_roots_home_are_below_the_floor(path: str, fragment: str) -> None:
    """The floor under every grant: the host's root, /run (the Docker socket; /var/run links there) and
    /root are never mounted, whatever a WorkspacePolicy grants."""
    problem = host_path_problem(path)
    assert problem is not None
    assert fragment in problem


def test_spec_rejects_a_system_host_path_even_with_access_none() -> None:
    with pytest.raises(ValidationError, match="must not be or sit under /etc"):
        spec(workspace={"hostPath": "/etc"})


@pytest.mark.parametrize("path", ["/abs", "a/../b", "../a", "./a", "a//b", ".auth_token", "a/"])
def test_config_file_paths_must_be_clean_relative_and_not_the_token(path: str) -> None:
    with pytest.raises(ValidationError):
        spec(config={"files": [{"path": path, "content": ""}]})


@pytest.mark.parametrize("path", ["config.yaml", ".env", "skills/a/SKILL.md", "a..b/c"])
def test_config_file_paths_accepted(path: str) -> None:
    assert config_path_problem(path) is None
    assert spec(config={"files": [{"path": path, "content": ""}]}).config.files[0].path == path


def test_config_file_paths_are_unique() -> None:
    with pytest.raises(ValidationError, match=r"duplicate config\.files path"):
        spec(config={"files": [{"path": "a", "content": ""}, {"path": "a", "content": "b"}]})


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/molecule-ai/workspace-template-hermes:latest",
        "localhost:5000/x/y:0.8.2",
        f"ghcr.io/a/b@sha256:{DIGEST}",
        f"ghcr.io/a/b:latest@sha256:{DIGEST}",
        "workspace-template:hermes",
        "alpine",
        "123456789012.dkr.ecr.us-east-2.amazonaws.com/molecule-ai/workspace-template-codex:sha-abc1234",
    ],
)
def test_image_pattern_accepts_registry_port_path_tag_and_digest(image: str) -> None:
    assert spec(image=image).image == image


@pytest.mark.parametrize("image", ["ghcr.io/A/b", "x@sha256:abc", "a b", "x:", "/x"])
def test_image_pattern_rejects_malformed_references(image: str) -> None:
    with pytest.raises(ValidationError):
        spec(image=image)


@pytest.mark.parametrize("runtime", ["Claude", "abc-", "-abc", "a_b", "x" * 64])
def test_runtime_must_be_a_dns_label(runtime: str) -> None:
    with pytest.raises(ValidationError):
        spec(runtime=runtime)


def test_unknown_runtime_is_accepted_by_the_schema() -> None:
    # The known list is the controller's setting; an unknown runtime is reported as Stalled/UnknownRuntime.
    assert spec(runtime="mystery").runtime == "mystery"


@pytest.mark.parametrize("tier", [0, 5, -1])
def test_tier_is_between_one_and_four(tier: int) -> None:
    with pytest.raises(ValidationError):
        spec(tier=tier)


def test_awareness_needs_both_namespace_and_url() -> None:
    with pytest.raises(ValidationError):
        spec(awareness={"namespace": "n"})
    with pytest.raises(ValidationError):
        spec(awareness={"namespace": "", "url": "http://a"})


def test_platform_url_must_be_http() -> None:
    with pytest.raises(ValidationError):
        spec(platformURL="ftp://x")


@pytest.mark.parametrize(
    "fields",
    [
        {"env": [{"name": "A", "value": "x\x00y"}]},
        {"platformURL": "http://platform\x00:8080"},
        {"awareness": {"namespace": "n\x00", "url": "http://a"}},
        {"awareness": {"namespace": "n", "url": "http://a\x00"}},
    ],
)
def test_text_that_becomes_an_environment_variable_may_not_hold_a_nul_byte(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        spec(**fields)
    # Everything else odd is fine: escape, right-to-left mark, astral plane.
    assert (
        spec(env=[{"name": "A", "value": "\x1b[1m\u202e\U0001f600"}]).env[0].value
        == "\x1b[1m\u202e\U0001f600"
    )


def test_opaque_tokens_are_bounded() -> None:
    with pytest.raises(ValidationError):
        spec(restartRequestedAt="x" * 65)


def test_workspace_name_leaves_room_for_the_token_secret_name() -> None:
    body = {"metadata": {"name": "a" * 243}, "spec": {}}
    with pytest.raises(ValidationError, match="at most 242"):
        Workspace.model_validate(body)
    assert Workspace.model_validate({"metadata": {"name": "a" * 242}, "spec": {}}).spec.tier == 2


def test_workspace_parses_a_full_object_and_ignores_unknown_fields() -> None:
    body = {
        "apiVersion": "molecule.ai/v1alpha1",
        "kind": "Workspace",
        "metadata": {"name": "w", "namespace": "ns", "uid": "u", "generation": 3},
        "spec": {"runtime": "hermes", "futureField": True},
        "status": {"observedGeneration": 2, "phase": "Running", "internalURL": "http://ws-u:8000"},
    }
    ws = Workspace.model_validate(body)
    assert ws.spec.runtime == "hermes"
    assert ws.status is not None
    assert ws.status.internal_url == "http://ws-u:8000"


def test_status_to_dict_uses_wire_names_and_omits_unset_fields() -> None:
    status = WorkspaceStatus(
        observed_generation=1,
        phase="Running",
        container=ContainerStatus(name="ws-x", image_id="sha256:1", oom_killed=False),
        internal_url="http://ws-x:8000",
    )
    assert status.to_dict() == {
        "observedGeneration": 1,
        "conditions": [],
        "phase": "Running",
        "container": {"name": "ws-x", "imageID": "sha256:1", "oomKilled": False},
        "internalURL": "http://ws-x:8000",
    }
