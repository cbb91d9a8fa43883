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
    result = plan_workspace(ALICE, WorkspaceSpec.model_validate(spec or {}), inputs, settings, grant)
    assert isinstance(result, ContainerPlan), result
    return result
