"""spec.envFrom: every key of a Secret or ConfigMap as a variable, as in a Pod, with env winning."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from controller.api.workspace import MAX_ENV_FROM, WorkspaceSpec
from controller.core.env import expand_env_from
from tests.unit.test_reconciler import NS, World

CONFIG = {"files": [{"path": "config.yaml", "content": "model: x\n"}]}


def spec(**fields: Any) -> WorkspaceSpec:
    return WorkspaceSpec.model_validate({"config": CONFIG, **fields})


# --- the merge, pure --------------------------------------------------------------------------------


def test_each_key_becomes_a_prefixed_variable_and_a_later_source_wins() -> None:
    merged, skipped = expand_env_from(
        [
            ("", "Secret a", {"A": "1", "B": "2"}),
            ("X_", "ConfigMap b", {"A": "3"}),
            ("", "ConfigMap c", {"A": "4"}),
        ],
        [],
    )
    assert merged == [("A", "4"), ("B", "2"), ("X_A", "3")]
    assert skipped == []


def test_env_wins_over_every_source_and_keeps_its_order_after_them() -> None:
    merged, _ = expand_env_from(
        [("", "Secret a", {"B": "from-a", "C": "c"})], [("Z", "z"), ("B", "explicit")]
    )
    assert merged == [("C", "c"), ("Z", "z"), ("B", "explicit")]


@pytest.mark.parametrize(
    ("prefix", "key", "why"),
    [
        ("", "bad-key", "not a variable name"),
        ("", "1LEADING", "not a variable name"),
        ("", "A=B", "not a variable name"),
        ("", "WORKSPACE_ID", "set by the controller"),
        ("", "PLATFORM_URL", "set by the controller"),
        ("WORKSPACE_", "ID", "set by the controller"),
    ],
)
def test_a_key_that_makes_no_usable_name_is_skipped_and_named_without_its_value(
    prefix: str, key: str, why: str
) -> None:
    merged, skipped = expand_env_from([(prefix, "Secret s", {key: "the-value", "OK": "1"})], [])
    assert merged == [(prefix + "OK", "1")]
    assert len(skipped) == 1
    assert why in skipped[0]
    assert "Secret s" in skipped[0]
    assert "the-value" not in skipped[0]


def test_pythonpath_may_come_from_a_source_as_it_may_from_env() -> None:
    merged, skipped = expand_env_from([("", "ConfigMap c", {"PYTHONPATH": "/x"})], [])
    assert (merged, skipped) == ([("PYTHONPATH", "/x")], [])


# --- the schema ---------------------------------------------------------------------------------------


def test_a_source_names_exactly_one_object() -> None:
    with pytest.raises(ValidationError, match="exactly one of secretRef or configMapRef"):
        spec(envFrom=[{"secretRef": {"name": "a"}, "configMapRef": {"name": "b"}}])
    with pytest.raises(ValidationError, match="exactly one of secretRef or configMapRef"):
        spec(envFrom=[{"prefix": "P_"}])


def test_a_prefix_must_start_a_variable_name_and_sources_are_bounded() -> None:
    with pytest.raises(ValidationError):
        spec(envFrom=[{"prefix": "1X", "secretRef": {"name": "a"}}])
    with pytest.raises(ValidationError):
        spec(envFrom=[{"prefix": "A-", "secretRef": {"name": "a"}}])
    with pytest.raises(ValidationError):
        spec(envFrom=[{"secretRef": {"name": f"s{i}"}} for i in range(MAX_ENV_FROM + 1)])
    assert spec(envFrom=[{"prefix": "", "configMapRef": {"name": "a", "optional": True}}]).env_from


# --- through the reconciler ------------------------------------------------------------------------------


def test_secret_and_config_map_keys_reach_the_container_and_env_wins() -> None:
    async def scenario() -> None:
        world = World(
            envFrom=[
                {"secretRef": {"name": "platform"}},
                {"prefix": "CFG_", "configMapRef": {"name": "settings"}},
            ],
            env=[{"name": "MODEL", "value": "explicit"}],
        )
        world.kube.add_secret(NS, "platform", {"OPENAI_API_KEY": "sk-1", "MODEL": "from-secret"})
        world.kube.config_maps[(NS, "settings")] = {
            "metadata": {"name": "settings"},
            "data": {"LEVEL": "debug"},
        }
        await world.reconcile()
        env = world.container().spec.env
        assert "OPENAI_API_KEY=sk-1" in env
        assert "CFG_LEVEL=debug" in env
        assert "MODEL=explicit" in env
        assert "MODEL=from-secret" not in env
        assert world.cond("Ready") == ("True", "ContainerRunning")

    asyncio.run(scenario())


def test_a_missing_required_source_stalls_naming_it_and_an_optional_one_is_skipped() -> None:
    async def scenario() -> None:
        world = World(
            envFrom=[{"configMapRef": {"name": "gone", "optional": True}}, {"secretRef": {"name": "absent"}}]
        )
        await world.reconcile()
        assert world.cond("Stalled") == ("True", "SecretNotFound")
        stalled = world.condition("Stalled")
        assert stalled is not None
        assert "absent (spec.envFrom[1]) not found" in stalled["message"]
        assert world.writes_since(0) == []

        world.kube.add_secret(NS, "absent", {"TOKEN": "t"})
        await world.reconcile()
        assert world.condition("Stalled") is None
        assert "TOKEN=t" in world.container().spec.env

    asyncio.run(scenario())


def test_skipped_keys_are_a_warning_when_the_container_is_made_and_no_value_is_quoted() -> None:
    async def scenario() -> None:
        world = World(envFrom=[{"secretRef": {"name": "mixed"}}])
        world.kube.add_secret(NS, "mixed", {"good": "v-good-123", "not-a-name": "v-hidden-456", "TIER": "9"})
        await world.reconcile()
        await world.events.settle()
        assert "good=v-good-123" in world.container().spec.env
        warnings = [e for e in world.kube.events if e.reason == "InvalidEnvFromKeys"]
        assert len(warnings) == 1
        assert "'not-a-name' (Secret mixed): not a variable name" in warnings[0].message
        assert "TIER (Secret mixed): set by the controller" in warnings[0].message
        assert "v-hidden-456" not in warnings[0].message
        assert "TIER=2" in world.container().spec.env

        mark = len(world.kube.events)
        await world.reconcile()  # nothing changed: no container made, no second warning
        assert [e.reason for e in world.kube.events[mark:]] == []

    asyncio.run(scenario())


def test_a_nul_byte_in_a_source_stalls_naming_the_key_not_the_value() -> None:
    async def scenario() -> None:
        world = World(envFrom=[{"secretRef": {"name": "bin"}}])
        world.kube.add_secret(NS, "bin", {"BLOB": "ab\x00cd-secret"})
        await world.reconcile()
        assert world.cond("Stalled") == ("True", "InvalidConfig")
        stalled = world.condition("Stalled")
        assert stalled is not None
        assert "'BLOB'" in stalled["message"]
        assert "cd-secret" not in stalled["message"]

    asyncio.run(scenario())


def test_a_nul_byte_in_a_key_that_is_skipped_or_overridden_does_not_stall() -> None:
    async def scenario() -> None:
        world = World(envFrom=[{"secretRef": {"name": "mixed"}}], env=[{"name": "OVERRIDDEN", "value": "v"}])
        world.kube.add_secret(NS, "mixed", {"keystore.p12": "\x00bin", "OVERRIDDEN": "\x00x", "GOOD": "g"})
        await world.reconcile()
        assert world.cond("Ready") == ("True", "ContainerRunning")
        env = world.container().spec.env
        assert "GOOD=g" in env
        assert "OVERRIDDEN=v" in env

    asyncio.run(scenario())
