"""The plan of a sample Workspace ("alice" in team-a), for unit tests of the plan and of what reads plans
(the decision, the status). Built by the real `plan_workspace`, never by hand."""

from __future__ import annotations

from typing import Any

from controller.api.workspace import WorkspaceSpec
from controller.core.identity import WorkspaceRef
from controller.core.plan import ContainerPlan, ResolvedInputs, plan_workspace
from controller.core.policy import DEFAULT_GRANT, Grant
from controller.settings import ControllerSettings

UID = "3f2a9c1e-8b7d-4e21-9a0f-123456789abc"
ALICE = WorkspaceRef(uid=UID, namespace="team-a", name="alice")
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
    grant: Grant = DEFAULT_GRANT,
) -> ContainerPlan:
    result = plan_workspace(
        ALICE, WorkspaceSpec.model_validate(spec_for(spec, inputs)), inputs, settings, grant
    )
    assert isinstance(result, ContainerPlan), result
    return result


def spec_for(spec: dict[str, Any] | None, inputs: ResolvedInputs) -> dict[str, Any]:
    """`spec`, naming the sources `inputs` were resolved from when it does not say (one ConfigMap per
    resolved mapping; the token's Secret)."""
    spec = dict(spec or {})
    config = dict(spec.get("config") or {})
    if "fromConfigMaps" not in config and inputs.config_maps:
        config["fromConfigMaps"] = [{"name": f"cm-{i}"} for i in range(len(inputs.config_maps))]
        spec["config"] = config
    if "authToken" not in spec and inputs.auth_token:
        spec["authToken"] = {"secretRef": {"name": "token"}}
    return spec
