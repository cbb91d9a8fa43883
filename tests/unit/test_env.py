"""The container environment: the Go provisioner's order, AWARENESS_* only in pairs, user variables last."""

from __future__ import annotations

import pytest

from controller.core.env import ReservedEnvNameError, build_container_env, env_index

URL = "http://platform:8080"


def build(**overrides: object) -> tuple[str, ...]:
    args: dict[str, object] = {"workspace_id": "uid-1", "platform_url": URL, "tier": 2}
    args.update(overrides)
    return build_container_env(**args)  # type: ignore[arg-type]


def test_platform_variables_come_first_in_the_go_provisioner_order() -> None:
    assert build() == (
        "WORKSPACE_ID=uid-1",
        "WORKSPACE_CONFIG_PATH=/configs",
        f"PLATFORM_URL={URL}",
        f"MOLECULE_URL={URL}",
        "TIER=2",
        "PLUGINS_DIR=/plugins",
        "PYTHONPATH=/app",
    )


def test_injects_both_platform_url_and_molecule_url_and_they_always_match() -> None:
    env = build(platform_url="http://other:1")
    assert "PLATFORM_URL=http://other:1" in env
    assert "MOLECULE_URL=http://other:1" in env


def test_injects_pythonpath() -> None:
    assert "PYTHONPATH=/app" in build()


def test_workspace_env_can_override_pythonpath_by_coming_later() -> None:
    env = build(user_env=[("PYTHONPATH", "/custom")])
    default, custom = env_index(env, "PYTHONPATH")
    assert custom > default
    assert env[custom] == "PYTHONPATH=/custom"


@pytest.mark.parametrize(
    ("awareness", "present"),
    [
        (("ns", "http://aw"), True),
        (("ns", ""), False),
        (("", "http://aw"), False),
        (None, False),
    ],
)
def test_awareness_only_when_both_set(awareness: tuple[str, str] | None, present: bool) -> None:
    env = build(awareness=awareness)
    assert ("AWARENESS_NAMESPACE=ns" in env) is present
    assert any(e.startswith("AWARENESS_URL=") for e in env) is present
    if present:
        assert env[7:9] == ("AWARENESS_NAMESPACE=ns", "AWARENESS_URL=http://aw")


def test_custom_env_vars_are_appended_in_spec_order() -> None:
    env = build(user_env=[("B", "2"), ("A", "1"), ("EMPTY", "")])
    assert env[-3:] == ("B=2", "A=1", "EMPTY=")


def test_values_are_kept_verbatim() -> None:
    assert build(user_env=[("X", "a=b c\nd")])[-1] == "X=a=b c\nd"


@pytest.mark.parametrize("name", ["WORKSPACE_ID", "PLATFORM_URL", "MOLECULE_URL", "TIER", "AWARENESS_URL"])
def test_reserved_names_cannot_be_overridden(name: str) -> None:
    with pytest.raises(ReservedEnvNameError, match=f"env name {name} is set by the controller"):
        build(user_env=[(name, "x")])


@pytest.mark.parametrize("name", ["A=B", "1X", ""])
def test_malformed_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a valid variable name"):
        build(user_env=[(name, "x")])
