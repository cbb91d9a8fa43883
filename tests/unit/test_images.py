"""Image selection, the moving-tag rule, pull decisions, pull credentials and the image-not-found message."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from controller.api.workspace import PullPolicy, WorkspaceSpec
from controller.core.causes import Cause
from controller.core.images import (
    image_never_pulled_message,
    image_not_found_message,
    is_moving_tag,
    pull_failure_tolerated,
    registry_auth_for,
    runtime_image,
    runtime_tag_from_image,
    select_image,
    should_pull,
)
from controller.port.values import RegistryCredentials
from controller.settings import KNOWN_RUNTIMES, ControllerSettings

GHCR = "ghcr.io/molecule-ai"
ECR = "123456789012.dkr.ecr.us-east-2.amazonaws.com/molecule-ai"
DIGEST = "0123456789abcdef" * 4


@pytest.mark.parametrize("runtime", KNOWN_RUNTIMES)
def test_runtime_image_for_all_known_runtimes(runtime: str) -> None:
    assert (
        runtime_image(GHCR, runtime, KNOWN_RUNTIMES)
        == f"ghcr.io/molecule-ai/workspace-template-{runtime}:latest"
    )


@pytest.mark.parametrize("runtime", ["", "nonexistent", "WORKSPACE-TEMPLATE-FAKE", "../../../etc/passwd"])
def test_runtime_image_unknown_runtime_is_empty(runtime: str) -> None:
    assert runtime_image(GHCR, runtime, KNOWN_RUNTIMES) == ""


@pytest.mark.parametrize("runtime", KNOWN_RUNTIMES)
def test_registry_override_applies_to_all_runtimes(runtime: str) -> None:
    assert runtime_image(ECR, runtime, KNOWN_RUNTIMES) == f"{ECR}/workspace-template-{runtime}:latest"


def test_select_image_prefers_spec_image_even_for_unknown_runtime() -> None:
    spec = WorkspaceSpec(runtime="mystery", image=f"ghcr.io/x/y@sha256:{DIGEST}")
    assert select_image(spec, ControllerSettings()) == f"ghcr.io/x/y@sha256:{DIGEST}"


def test_select_image_uses_the_runtime_image_under_the_configured_registry() -> None:
    settings = ControllerSettings(registry_prefix=ECR)
    assert (
        select_image(WorkspaceSpec(runtime="hermes"), settings) == f"{ECR}/workspace-template-hermes:latest"
    )


def test_select_image_defaults_to_langgraph() -> None:
    assert (
        select_image(WorkspaceSpec(), ControllerSettings()) == f"{GHCR}/workspace-template-langgraph:latest"
    )


def test_unknown_runtime_without_image_is_reported_not_replaced_by_the_default() -> None:
    result = select_image(WorkspaceSpec(runtime="mystery"), ControllerSettings())
    assert isinstance(result, Cause)
    assert result.reason == "UnknownRuntime"
    assert "'mystery'" in result.message
    assert "claude-code" in result.message
    assert "spec.image" in result.message


@pytest.mark.parametrize(
    ("ref", "moving"),
    [
        ("ghcr.io/molecule-ai/workspace-template-hermes", True),
        ("ghcr.io/molecule-ai/workspace-template-hermes:latest", True),
        ("ghcr.io/molecule-ai/workspace-template-hermes:staging", True),
        ("ghcr.io/molecule-ai/workspace-template-hermes:main", True),
        ("ghcr.io/molecule-ai/workspace-template-hermes:dev", True),
        ("ghcr.io/molecule-ai/workspace-template-hermes:edge", True),
        ("ghcr.io/molecule-ai/workspace-template-hermes:nightly", True),
        ("ghcr.io/molecule-ai/workspace-template-hermes:rolling", True),
        ("ghcr.io/molecule-ai/workspace-template-hermes:0.8.2", False),
        ("ghcr.io/molecule-ai/workspace-template-hermes:v1.2.3", False),
        ("ghcr.io/molecule-ai/workspace-template-hermes:sha-abc1234", False),
        ("ghcr.io/molecule-ai/workspace-template-hermes:2026-04-30", False),
        ("ghcr.io/molecule-ai/workspace-template-hermes:build-12345", False),
        (f"ghcr.io/molecule-ai/workspace-template-hermes@sha256:{DIGEST}", False),
        (f"ghcr.io/molecule-ai/workspace-template-hermes:latest@sha256:{DIGEST}", False),
        ("localhost:5000/x", True),
        ("localhost:5000/x:0.8.2", False),
        ("localhost:5000/x:latest", True),
        ("workspace-template:hermes", False),
        ("x:LATEST", False),  # case-sensitive, as in the Go provisioner
    ],
)
def test_moving_tag_classifier_matches_the_go_provisioner(ref: str, moving: bool) -> None:
    assert is_moving_tag(ref) is moving


PINNED = "ghcr.io/x/y:0.8.2"
MOVING = "ghcr.io/x/y:latest"


@pytest.mark.parametrize(
    ("policy", "image", "present", "pull"),
    [
        ("Always", PINNED, True, True),
        ("Always", PINNED, False, True),
        ("Never", MOVING, False, False),
        ("Never", MOVING, True, False),
        ("IfNotPresent", MOVING, True, False),
        ("IfNotPresent", PINNED, False, True),
        (None, PINNED, True, False),
        (None, PINNED, False, True),
        (None, MOVING, True, True),
        (None, MOVING, False, True),
    ],
)
def test_should_pull_follows_kubernetes_policies_and_the_go_provisioner_rule_when_unset(
    policy: PullPolicy | None, image: str, present: bool, pull: bool
) -> None:
    assert should_pull(policy, image, present) is pull


def test_failed_refresh_of_a_cached_image_falls_through_only_when_policy_is_unset() -> None:
    assert pull_failure_tolerated(None, present_locally=True)
    assert not pull_failure_tolerated(None, present_locally=False)
    assert not pull_failure_tolerated("Always", present_locally=True)


@pytest.mark.parametrize(
    ("image", "runtime"),
    [
        ("workspace-template:hermes", "hermes"),
        ("ghcr.io/molecule-ai/workspace-template-claude-code:latest", "claude-code"),
        (f"{ECR}/workspace-template-langgraph:0.8.2", "langgraph"),
        ("ghcr.io/molecule-ai/workspace-template-codex", "codex"),
        (f"ghcr.io/molecule-ai/workspace-template-crewai@sha256:{DIGEST}", "crewai"),
        ("custom/agent:v3", "v3"),
        ("trailing:", "trailing:"),
        ("plain", "plain"),
    ],
)
def test_runtime_tag_from_image(image: str, runtime: str) -> None:
    assert runtime_tag_from_image(image) == runtime


def test_image_not_found_message_names_image_runtime_and_configured_registry() -> None:
    image = f"{ECR}/workspace-template-hermes:latest"
    message = image_not_found_message(image, detail="manifest unknown")
    assert repr(image) in message
    assert "runtime hermes" in message
    assert "123456789012.dkr.ecr.us-east-2.amazonaws.com" in message
    assert "GHCR" not in message
    assert "imagePullSecrets" in message
    assert message.endswith("(underlying error: manifest unknown)")


def test_image_not_found_message_accepts_an_explicit_registry() -> None:
    assert "registry mirror.local" in image_not_found_message("x/y:1", registry="mirror.local")


def test_never_pulled_message_names_the_policy() -> None:
    assert "imagePullPolicy is Never" in image_never_pulled_message("x:1")


def auth_doc(key: str, **entry: Any) -> dict[str, Any]:
    return {"auths": {key: entry}}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_pull_credentials_from_username_and_password() -> None:
    docs = [auth_doc("ghcr.io", username="bot", password="pw")]
    assert registry_auth_for("ghcr.io/a/b:1", docs) == RegistryCredentials("ghcr.io", "bot", "pw")


def test_pull_credentials_from_the_auth_field_and_a_url_key() -> None:
    docs = [auth_doc("https://registry.example.com:5000/v2/", auth=b64("bot:p:w"))]
    auth = registry_auth_for("registry.example.com:5000/a/b", docs)
    assert auth == RegistryCredentials("registry.example.com:5000", "bot", "p:w")
    assert auth.identitytoken == ""


def test_the_auth_field_is_decoded_keeping_a_colon_inside_the_password() -> None:
    # The daemon ignores a config file's `auth` field: it must arrive as a username and a password.
    docs = [auth_doc("ghcr.io", auth=b64("robot:s3:cret"))]
    assert registry_auth_for("ghcr.io/a/b", docs) == RegistryCredentials(
        serveraddress="ghcr.io", username="robot", password="s3:cret"
    )


def test_docker_hub_credentials_match_under_any_of_its_names() -> None:
    docs = [auth_doc("https://index.docker.io/v1/", username="u", password="p")]
    assert registry_auth_for("alpine", docs) == RegistryCredentials("docker.io", "u", "p")


def test_first_matching_secret_wins_and_other_registries_are_ignored() -> None:
    docs = [
        auth_doc("quay.io", username="q", password="q"),
        auth_doc("ghcr.io", username="first", password="1"),
        auth_doc("ghcr.io", username="second", password="2"),
    ]
    auth = registry_auth_for("ghcr.io/a/b", docs)
    assert auth is not None
    assert auth.username == "first"


def test_identity_tokens_are_passed_as_such() -> None:
    docs = [auth_doc("myacr.azurecr.io", identitytoken="tok")]
    auth = registry_auth_for("myacr.azurecr.io/a", docs)
    assert auth == RegistryCredentials(serveraddress="myacr.azurecr.io", identitytoken="tok")
    assert (auth.username, auth.password) == ("", "")


@pytest.mark.parametrize(
    "docs",
    [
        [],
        [{"notauths": {}}],
        [auth_doc("ghcr.io")],
        [auth_doc("ghcr.io", auth="!!not base64!!")],
        [auth_doc("ghcr.io", auth="%%%not-base64")],
        [auth_doc("ghcr.io", auth=b64("no-colon"))],
        [auth_doc("ghcr.io", username="only-user")],
        [auth_doc("ghcr.io", username="only-user", password="")],
        [auth_doc("ghcr.io", auth=b64("robot:"))],
        [auth_doc("ghcr.io", email="a@b.c")],
        [{"auths": {"ghcr.io": "not a mapping"}}],
    ],
)
def test_no_usable_credentials_gives_none(docs: list[dict[str, Any]]) -> None:
    assert registry_auth_for("ghcr.io/a/b", docs) is None


def test_credentials_never_show_in_repr() -> None:
    assert "s3cret" not in repr(RegistryCredentials("ghcr.io", "bot", "s3cret"))
    assert "tok3n" not in repr(RegistryCredentials("ghcr.io", identitytoken="tok3n"))


def test_an_admins_runtime_image_is_used_for_a_new_runtime_and_over_a_template() -> None:
    settings = ControllerSettings.from_env(
        {
            "MOLECULE_IMAGE_REGISTRY": "reg.local/m",
            "WC_RUNTIMES": "external",
            "WC_RUNTIME_IMAGES": "hermes=other.example/h:3",
        }
    )

    def image(runtime: str) -> str | Cause:
        spec = WorkspaceSpec.model_validate(
            {"runtime": runtime, "config": {"files": [{"path": "config.yaml", "content": "x: 1\n"}]}}
        )
        return select_image(spec, settings)

    assert image("hermes") == "other.example/h:3"
    assert image("external") == "reg.local/m/workspace-template-external:latest"
    assert image("langgraph") == "reg.local/m/workspace-template-langgraph:latest"
    unknown = image("nope")
    assert isinstance(unknown, Cause)
    assert "external" in unknown.message
