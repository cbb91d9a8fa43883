"""Runtimes are data: an admin adds a runtime and maps it to an image through the controller's settings
(WC_RUNTIMES, WC_RUNTIME_IMAGES), with no new release; a runtime nobody configured is reported."""

from __future__ import annotations

import pytest

from tests.support.stack import Registry
from tests.support.workspaces import WorkspaceHarness, workspace_manifest

pytestmark = pytest.mark.e2e


def test_an_added_runtime_runs_the_image_the_admin_mapped(ws: WorkspaceHarness, registry: Registry) -> None:
    mapped = registry.image("hermes")
    ws.start_controller(WC_RUNTIMES="external", WC_RUNTIME_IMAGES=f"research-bot={mapped}")
    ws.apply(workspace_manifest("bot", {"runtime": "research-bot"}))
    ws.apply(workspace_manifest("nobody", {"runtime": "not-configured"}))
    obj = ws.wait_ready("bot")
    assert obj["status"]["container"]["image"] == mapped
    assert ws.container("bot").attrs["Config"]["Image"] == mapped
    stalled = ws.wait_stalled("nobody", "UnknownRuntime")
    assert "research-bot" in stalled["message"]
    assert "external" in stalled["message"]
