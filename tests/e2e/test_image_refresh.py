"""spec.imageUpdate against the local registry: a new image pushed under the tag is applied under Auto
within about an interval, and under Manual only reported until applyRequestedAt approves it."""

from __future__ import annotations

import secrets
import time

import pytest

from tests.support.kubectl import KubectlError
from tests.support.stack import Registry, publish_image, push_test_images
from tests.support.workspaces import WorkspaceHarness, agent_version, is_ready, workspace_manifest

pytestmark = pytest.mark.e2e

INTERVAL = 10


def test_a_new_image_under_the_tag_is_applied_under_auto_and_only_reported_under_manual(
    ws: WorkspaceHarness, registry: Registry
) -> None:
    suffix = secrets.token_hex(4)
    moving = f"{registry.address}/wc-refresh-{suffix}/agent:latest"
    v1 = registry.image("langgraph")
    publish_image(ws.docker, v1, moving, keep=True)
    ws.grant(images=[{"prefix": f"{registry.address}/"}])
    for name, policy in (("auto", "Auto"), ("manual", "Manual")):
        spec = {"image": moving, "imageUpdate": {"policy": policy, "intervalSeconds": INTERVAL}}
        ws.apply(workspace_manifest(name, spec))
    ws.start_controller()
    first = {name: ws.wait_ready(name) for name in ("auto", "manual")}
    for name in first:
        checked = ws.wait_for(name, lambda o: bool((o["status"].get("image") or {}).get("latest")), "checked")
        assert checked["status"]["image"]["latest"] == checked["status"]["container"]["imageDigest"]
        assert "updateAvailable" not in checked["status"]["image"]
        assert agent_version(checked["status"]["endpoint"]) == "v1"

    version = f"v2-{suffix}"
    push_test_images(registry, tag=version, version=version)
    v2 = registry.image("langgraph", version)
    publish_image(ws.docker, v2, moving, keep=False)
    ws.docker.images.get(v1).tag(*moving.rsplit(":", 1))  # the host's cache still says v1
    pushed = time.monotonic()

    auto = ws.wait_for(
        "auto",
        lambda o: (
            is_ready(o) and o["status"]["container"]["id"] != first["auto"]["status"]["container"]["id"]
        ),
        "Ready with the new image",
        timeout=4 * INTERVAL + 60,
    )
    print(f"Auto: the new image ran {time.monotonic() - pushed:.1f}s after the push (interval {INTERVAL}s)")
    new_digest = auto["status"]["container"]["imageDigest"]
    assert new_digest != first["auto"]["status"]["container"]["imageDigest"]
    assert auto["status"]["image"]["latest"] == new_digest
    assert agent_version(auto["status"]["endpoint"]) == version
    assert "Recreating" in ws.event_reasons("auto")

    manual = ws.wait_for(
        "manual",
        lambda o: (o["status"].get("image") or {}).get("updateAvailable") == new_digest,
        "status.image.updateAvailable",
        timeout=4 * INTERVAL + 60,
    )
    assert manual["status"]["container"]["id"] == first["manual"]["status"]["container"]["id"]
    assert (
        manual["status"]["container"]["imageDigest"] == first["manual"]["status"]["container"]["imageDigest"]
    )
    assert agent_version(manual["status"]["endpoint"]) == "v1"

    ws.patch_spec(
        "manual",
        {"imageUpdate": {"policy": "Manual", "intervalSeconds": INTERVAL, "applyRequestedAt": "approve-1"}},
    )
    applied = ws.wait_for(
        "manual",
        lambda o: is_ready(o) and (o["status"].get("image") or {}).get("lastApplyHandled") == "approve-1",
        "the approved update applied",
    )
    assert applied["status"]["container"]["id"] != first["manual"]["status"]["container"]["id"]
    assert applied["status"]["container"]["imageDigest"] == new_digest
    assert "updateAvailable" not in applied["status"]["image"]
    assert agent_version(applied["status"]["endpoint"]) == version


def test_an_image_update_policy_that_is_not_one_is_refused_at_apply(ws: WorkspaceHarness) -> None:
    for bad in ({"policy": "Sometimes"}, {"policy": "Auto", "intervalSeconds": 1}, {}):
        with pytest.raises(KubectlError, match=r"spec.imageUpdate"):
            ws.apply(workspace_manifest("bad-update", {"imageUpdate": bad}))
