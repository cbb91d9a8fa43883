"""WorkspaceTemplates: a spec resolved against its template, pinned fields refused, the store's answers,
and the admission policy generated from the same field list with the same message."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import yaml

from controller.api import template_admission
from controller.api.template import TEMPLATE_FIELDS, WorkspaceTemplate, WorkspaceTemplateSpec
from controller.api.workspace import WorkspaceSpec
from controller.core.causes import Cause, Reason
from controller.core.templates import (
    Template,
    override_message,
    pinned_overrides,
    resolve,
    template_name,
    template_of,
)
from controller.reconcile.templates import READ_TTL, Resolved, TemplateStore
from tests.support.fake_kube import FakeKube


def template_body(name: str = "agent", generation: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "molecule.ai/v1alpha1",
        "kind": "WorkspaceTemplate",
        "metadata": {"name": name, "namespace": "team-a", "generation": generation},
        "spec": spec,
    }


def read(body: dict[str, Any]) -> Template:
    found = template_of(body)
    assert isinstance(found, Template)
    return found


GPU = read(
    template_body(
        template={"runtime": "claude-code", "tier": 1, "env": [{"name": "MODEL", "value": "opus"}]},
        allowOverrides=["env"],
    )
)


# --- the model --------------------------------------------------------------------------------------------


def test_a_template_field_is_every_workspace_field_but_identity_one_off_requests_suspend_and_deletion() -> (
    None
):
    spec_fields = {info.alias or name for name, info in WorkspaceSpec.model_fields.items()}
    assert set(TEMPLATE_FIELDS) <= spec_fields
    assert spec_fields - set(TEMPLATE_FIELDS) == {
        "workspaceID",
        "adopt",
        "templateRef",
        "session",
        "restartRequestedAt",
        "suspend",
        "deletionPolicy",
        "shutdownTime",
        "shutdownPolicy",
        "wakeRequestedAt",
    }


def test_the_template_part_of_a_spec_has_no_defaults_so_only_what_is_written_is_pinned() -> None:
    spec = WorkspaceTemplateSpec.model_validate({"template": {"tier": 3}})
    assert spec.template.model_dump(by_alias=True, exclude_none=True) == {"tier": 3}


def test_the_template_part_keeps_the_workspace_field_constraints() -> None:
    with pytest.raises(ValueError, match="less than or equal to 4"):
        WorkspaceTemplateSpec.model_validate({"template": {"tier": 5}})
    with pytest.raises(ValueError, match="allowOverrides"):
        WorkspaceTemplate.model_validate({"spec": {"allowOverrides": ["workspaceID"]}})


# --- resolving --------------------------------------------------------------------------------------------


def test_a_workspace_gets_the_template_fields_it_leaves_out() -> None:
    merged = resolve({"templateRef": {"name": "agent"}}, GPU)
    assert merged == {
        "templateRef": {"name": "agent"},
        "runtime": "claude-code",
        "tier": 1,
        "env": [{"name": "MODEL", "value": "opus"}],
    }
    assert WorkspaceSpec.model_validate(merged).runtime == "claude-code"


def test_a_workspace_setting_a_pinned_field_is_refused_naming_the_field_and_what_may_be_set() -> None:
    refused = resolve({"templateRef": {"name": "agent"}, "tier": 3, "runtime": "langgraph"}, GPU)
    assert refused == Cause(
        Reason.TEMPLATE_OVERRIDE_DENIED,
        "spec.runtime, spec.tier: pinned by WorkspaceTemplate agent, whose allowOverrides is [env]",
    )


def test_an_allowed_env_is_merged_by_name_the_workspace_entry_winning() -> None:
    template = read(
        template_body(
            template={"env": [{"name": "MODEL", "value": "opus"}, {"name": "REGION", "value": "eu"}]},
            allowOverrides=["env"],
        )
    )
    merged = resolve(
        {"env": [{"name": "EXTRA", "value": "1"}, {"name": "MODEL", "value": "sonnet"}]}, template
    )
    assert isinstance(merged, dict)
    assert merged["env"] == [
        {"name": "MODEL", "value": "sonnet"},
        {"name": "REGION", "value": "eu"},
        {"name": "EXTRA", "value": "1"},
    ]


def test_an_allowed_field_other_than_env_is_replaced_whole() -> None:
    template = read(
        template_body(
            template={"config": {"files": [{"path": "a.yaml", "content": "a"}]}}, allowOverrides=["config"]
        )
    )
    merged = resolve({"config": {"files": [{"path": "b.yaml", "content": "b"}]}}, template)
    assert isinstance(merged, dict)
    assert merged["config"] == {"files": [{"path": "b.yaml", "content": "b"}]}


def test_a_field_the_template_leaves_unset_is_the_workspaces_to_set() -> None:
    assert pinned_overrides({"image": "registry.local/agent:1", "tier": 1}, GPU) == ("tier",)


def test_the_template_name_is_read_from_the_spec() -> None:
    assert template_name({"templateRef": {"name": "agent"}}) == "agent"
    assert template_name({}) is None
    assert template_name({"templateRef": {}}) is None


def test_an_unreadable_template_is_reported_not_guessed_at() -> None:
    found = template_of(template_body(template={"tier": "high"}))
    assert isinstance(found, Cause)
    assert found.reason == Reason.INVALID_SPEC
    assert found.message.startswith("WorkspaceTemplate agent cannot be read: template.tier")


def test_unknown_template_fields_are_dropped_not_merged() -> None:
    template = read(template_body(template={"tier": 1, "workspaceID": "taken"}))
    assert dict(template.fields) == {"tier": 1}


# --- the store --------------------------------------------------------------------------------------------


def test_the_store_resolves_from_the_watch_and_reports_the_template_generation() -> None:
    woken: list[str] = []
    store = TemplateStore(FakeKube(), wake_namespace=woken.append)
    store.template_event("ADDED", template_body(generation=4, template={"tier": 1}))
    assert woken == ["team-a"]
    resolved = asyncio.run(store.resolve("team-a", {"templateRef": {"name": "agent"}}))
    assert isinstance(resolved, Resolved)
    assert resolved.spec["tier"] == 1
    assert resolved.template is not None
    assert (resolved.template.name, resolved.template.generation) == ("agent", 4)


def test_the_store_wakes_the_namespace_only_when_a_template_changes_or_goes() -> None:
    woken: list[str] = []
    store = TemplateStore(FakeKube(), wake_namespace=woken.append)
    body = template_body(template={"tier": 1})
    store.template_event("ADDED", body)
    store.template_event("MODIFIED", body)
    assert woken == ["team-a"]
    store.template_event("MODIFIED", template_body(generation=2, template={"tier": 2}))
    store.template_event("DELETED", body)
    assert woken == ["team-a"] * 3


def test_a_template_the_watch_has_not_brought_is_read_from_the_api() -> None:
    kube = FakeKube()
    kube.templates[("team-a", "agent")] = template_body(template={"runtime": "claude-code"})
    store = TemplateStore(kube, wake_namespace=lambda _: None)
    resolved = asyncio.run(store.resolve("team-a", {"templateRef": {"name": "agent"}}))
    assert isinstance(resolved, Resolved)
    assert resolved.spec["runtime"] == "claude-code"


def test_a_missing_template_stalls_with_its_name_and_namespace() -> None:
    store = TemplateStore(FakeKube(), wake_namespace=lambda _: None)
    missing = asyncio.run(store.resolve("team-a", {"templateRef": {"name": "gone"}}))
    assert missing == Cause(Reason.TEMPLATE_NOT_FOUND, "WorkspaceTemplate gone not found in namespace team-a")


def test_a_spec_without_a_template_is_itself() -> None:
    store = TemplateStore(FakeKube(), wake_namespace=lambda _: None)
    spec = {"tier": 3}
    assert asyncio.run(store.resolve("team-a", spec)) == Resolved(spec, None)


def test_the_sample_template_and_workspace_resolve_to_a_valid_spec() -> None:
    path = template_admission.PATH.parents[1] / "samples" / "workspacetemplate.yaml"
    template_doc, workspace_doc = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    WorkspaceTemplate.model_validate(template_doc)
    merged = resolve(workspace_doc["spec"], read(template_doc))
    assert isinstance(merged, dict)
    spec = WorkspaceSpec.model_validate(merged)
    assert (spec.runtime, spec.tier, spec.update_strategy) == ("langgraph", 1, "StartFirst")
    assert {e.name: e.value for e in spec.env} == {"MODEL": "example/model", "LOG_LEVEL": "debug"}


# --- admission --------------------------------------------------------------------------------------------


def test_the_admission_file_is_up_to_date() -> None:
    assert template_admission.PATH.read_text(encoding="utf-8") == template_admission.render(), (
        "run `make crds`"
    )


def test_the_admission_policy_has_a_clause_per_template_field_and_reads_the_namespace_templates() -> None:
    policy, binding = [d for d in yaml.safe_load_all(template_admission.render()) if d]
    (pinned,) = [v["expression"] for v in policy["spec"]["variables"] if v["name"] == "pinned"]
    for field in TEMPLATE_FIELDS:
        assert f"has(object.spec.{field}) && " in pinned
        assert f"!('{field}' in variables.allowed) ? ['{field}'] : []" in pinned
    assert policy["spec"]["paramKind"]["kind"] == "WorkspaceTemplate"
    assert binding["spec"]["paramRef"] == {"selector": {}, "parameterNotFoundAction": "Allow"}
    assert "namespace" not in binding["spec"]["paramRef"]


def test_the_admission_message_is_the_controllers() -> None:
    (validation,) = yaml.safe_load_all(template_admission.render()).__next__()["spec"]["validations"]
    expression = validation["messageExpression"]
    # Evaluated by hand for pinned = [runtime, tier] and allowOverrides = [env, config]:
    fields, allowed, name = ["runtime", "tier"], ["env", "config"], "agent"
    built = (
        ", ".join("spec." + f for f in fields)
        + ": pinned by WorkspaceTemplate "
        + name
        + ", whose allowOverrides is ["
        + ", ".join(allowed)
        + "]"
    )
    assert built == override_message(("runtime", "tier"), "agent", ("env", "config"))
    for fragment in ("': pinned by WorkspaceTemplate '", "', whose allowOverrides is ['", "join(', ')"):
        assert fragment in expression


# --- the reconcile ------------------------------------------------------------------------------------


def test_a_workspace_runs_its_template_and_stops_when_the_template_goes_or_is_overridden() -> None:
    from tests.unit.test_reconciler import NS, World

    async def scenario() -> None:
        world = World(templateRef={"name": "agent"})
        world.kube.templates[(NS, "agent")] = {
            **template_body(generation=3, template={"env": [{"name": "MODEL", "value": "opus"}]}),
            "metadata": {"name": "agent", "namespace": NS, "generation": 3},
        }
        await world.reconcile()
        assert world.cond("Ready") == ("True", "ContainerRunning")
        assert world.status["template"] == {"name": "agent", "generation": 3}
        assert "MODEL=opus" in world.container().spec.env
        container = world.container()

        # As the watch tells it (read from the API before the watch spoke, a template is kept briefly).
        world.reconciler.templates.template_event("DELETED", world.kube.templates.pop((NS, "agent")))
        mark = world.mark()
        await world.reconcile()
        assert world.writes_since(mark) == [("stop_container", container.id)]
        assert world.cond("Stalled") == ("True", "TemplateNotFound")
        assert world.status["template"] == {"name": "agent", "generation": 3}  # what it last ran

        world.kube.templates[(NS, "agent")] = {
            **template_body(generation=4, template={"tier": 1}),
            "metadata": {"name": "agent", "namespace": NS, "generation": 4},
        }
        world.reconciler.templates.template_event("ADDED", world.kube.templates[(NS, "agent")])
        world.change_spec(tier=2)
        await world.reconcile()
        assert world.cond("Stalled") == ("True", "TemplateOverrideDenied")
        assert world.container().state == "exited"

    asyncio.run(scenario())


def test_a_template_the_watch_has_not_brought_is_read_once_for_everyone_for_a_while() -> None:
    async def scenario() -> None:
        kube, now = FakeKube(), [0.0]
        store = TemplateStore(kube, wake_namespace=lambda _: None, clock=lambda: now[0])
        for _ in range(3):
            assert isinstance(await store.resolve("ns", {"templateRef": {"name": "gone"}}), Cause)
        assert kube.template_reads == 1
        now[0] += READ_TTL
        await store.resolve("ns", {"templateRef": {"name": "gone"}})
        assert kube.template_reads == 2

    asyncio.run(scenario())
