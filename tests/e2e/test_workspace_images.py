"""Which image a workspace runs and how it is fetched: registry prefix, digest pins, moving and pinned
tags, and private registries through spec.imagePullSecrets.

Every image a test pulls lives under a repository only that test uses, so pushing a new version under a
tag never changes what another test runs.
"""

from __future__ import annotations

import secrets

import docker
import pytest

from tests.support.stack import Registry, publish_image, push_test_images
from tests.support.workspaces import (
    WorkspaceHarness,
    agent_version,
    condition,
    docker_config_secret_manifest,
    is_ready,
    workspace_manifest,
)

pytestmark = pytest.mark.e2e


def _pull_credentials(registry: Registry) -> dict[str, str]:
    assert registry.username is not None
    assert registry.password is not None
    return {"username": registry.username, "password": registry.password}


def _recreated(ws: WorkspaceHarness, name: str, old_id: str) -> dict[str, object]:
    obj = ws.wait_for(
        name,
        lambda o: is_ready(o) and (o["status"].get("container") or {}).get("id") not in (None, old_id),
        "Ready with a new container",
    )
    return obj


def test_registry_prefix_setting_selects_where_runtime_images_come_from(
    ws: WorkspaceHarness, registry: Registry
) -> None:
    """MOLECULE_IMAGE_REGISTRY=<prefix>: a runtime's image is <prefix>/workspace-template-<runtime>:latest,
    pulled from there (the image exists only in the registry under that prefix)."""
    prefix = f"{registry.address}/wc-prefix-{secrets.token_hex(4)}"
    expected = f"{prefix}/workspace-template-hermes:latest"
    publish_image(ws.docker, registry.image("hermes"), expected, keep=False)
    ws.apply(workspace_manifest("hermes", {"runtime": "hermes"}))
    ws.start_controller(MOLECULE_IMAGE_REGISTRY=prefix)

    obj = ws.wait_ready("hermes")
    container = ws.container("hermes")
    assert container.attrs["Config"]["Image"] == expected
    assert obj["status"]["container"]["image"] == expected
    assert obj["status"]["container"]["imageDigest"].startswith(f"{prefix}/workspace-template-hermes@sha256:")
    pulled = ws.wait_event("hermes", "Pulled")
    assert expected in pulled[0]["message"]


def test_a_digest_pin_is_pulled_from_the_registry_and_reported(
    ws: WorkspaceHarness, registry: Registry
) -> None:
    """spec.image <repo>@sha256:<digest>: pulled by digest (nothing of it is local), run, and reported
    as status.container.imageDigest."""
    repository = f"{registry.address}/wc-pin-{secrets.token_hex(4)}/agent"
    publish_image(ws.docker, registry.image("langgraph"), f"{repository}:v1", keep=True)
    digest_ref = next(
        d for d in ws.docker.images.get(f"{repository}:v1").attrs["RepoDigests"] if d.startswith(repository)
    )
    ws.docker.images.remove(f"{repository}:v1")  # the tag and the digest reference
    with pytest.raises(docker.errors.ImageNotFound):
        ws.docker.images.get(digest_ref)

    ws.grant(images=[{"prefix": f"{registry.address}/", "digestsOnly": True}])
    ws.apply(workspace_manifest("pinned", {"image": digest_ref}))
    ws.start_controller()
    obj = ws.wait_ready("pinned")
    assert ws.container("pinned").attrs["Config"]["Image"] == digest_ref
    assert obj["status"]["container"]["imageDigest"] == digest_ref
    assert obj["status"]["container"]["imageID"] == ws.docker.images.get(digest_ref).id
    assert "Pulled" in ws.event_reasons("pinned")
    assert agent_version(obj["status"]["endpoint"]) == "v1"


def test_a_moving_tag_is_pulled_again_on_recreate_and_a_pinned_tag_is_not(
    ws: WorkspaceHarness, registry: Registry
) -> None:
    """Both workspaces run v1. Then v2 is pushed under both tags while the host keeps v1 cached, and
    spec.restartRequestedAt recreates both containers: :latest (a moving tag) is pulled again and runs
    v2; :pin-<n> (a fixed tag) is used from the cache and still runs v1. (With WC_PULL_WINDOW=0, the Go
    provisioner's rule; by default a moving tag pulled less than 30 s before serves the creates that
    follow on that host, which tests/unit/test_reconciler.py covers.)"""
    suffix = secrets.token_hex(4)
    moving = f"{registry.address}/wc-moving-{suffix}/agent:latest"
    pinned = f"{registry.address}/wc-moving-{suffix}/agent:pin-{suffix}"
    v1 = registry.image("langgraph")
    publish_image(ws.docker, v1, moving, keep=True)
    publish_image(ws.docker, v1, pinned, keep=True)
    ws.grant(images=[{"prefix": f"{registry.address}/"}])
    ws.apply(workspace_manifest("moving", {"image": moving}))
    ws.apply(workspace_manifest("pinned", {"image": pinned}))
    ws.start_controller(WC_PULL_WINDOW="0")
    first = {name: ws.wait_ready(name) for name in ("moving", "pinned")}
    for obj in first.values():
        assert agent_version(obj["status"]["endpoint"]) == "v1"

    version = f"v2-{suffix}"
    push_test_images(registry, tag=version, version=version)
    v2 = registry.image("langgraph", version)
    for ref in (moving, pinned):
        publish_image(ws.docker, v2, ref, keep=False)
        ws.docker.images.get(v1).tag(*ref.rsplit(":", 1))  # the host's cache still says v1
        assert ws.docker.images.get(ref).id == ws.docker.images.get(v1).id

    for name in ("moving", "pinned"):
        ws.patch_spec(name, {"restartRequestedAt": f"upgrade-{suffix}"})
    moved = _recreated(ws, "moving", first["moving"]["status"]["container"]["id"])
    kept = _recreated(ws, "pinned", first["pinned"]["status"]["container"]["id"])
    assert agent_version(moved["status"]["endpoint"]) == version  # type: ignore[index]
    assert agent_version(kept["status"]["endpoint"]) == "v1"  # type: ignore[index]
    assert ws.container("moving").image.id == ws.docker.images.get(v2).id
    assert ws.container("pinned").image.id == ws.docker.images.get(v1).id
    assert moved["status"]["lastHandledRestartAt"] == f"upgrade-{suffix}"  # type: ignore[index]


def test_pull_secret_opens_a_private_registry_and_its_absence_stalls(
    ws: WorkspaceHarness, auth_registry: Registry
) -> None:
    """A kubernetes.io/dockerconfigjson Secret in spec.imagePullSecrets lets the controller pull from the
    htpasswd registry; without one the Workspace is Stalled with RegistryAuthFailed, naming the registry."""
    suffix = secrets.token_hex(4)
    credentials = _pull_credentials(auth_registry)
    with_secret = auth_registry.image("langgraph", f"with-{suffix}")
    without_secret = auth_registry.image("langgraph", f"without-{suffix}")
    for ref in (with_secret, without_secret):
        publish_image(ws.docker, auth_registry.image("langgraph"), ref, auth=credentials, keep=False)

    ws.apply(
        docker_config_secret_manifest(
            "regcred", auth_registry.address, credentials["username"], credentials["password"]
        )
    )
    ws.grant(images=[{"prefix": f"{auth_registry.address}/"}])
    ws.apply(workspace_manifest("private", {"image": with_secret, "imagePullSecrets": [{"name": "regcred"}]}))
    ws.apply(workspace_manifest("anonymous", {"image": without_secret}))
    ws.start_controller()

    obj = ws.wait_ready("private")
    assert ws.container("private").attrs["Config"]["Image"] == with_secret
    assert obj["status"]["container"]["imageDigest"].startswith(with_secret.rsplit(":", 1)[0] + "@sha256:")
    assert "Pulled" in ws.event_reasons("private")

    stalled = ws.wait_stalled("anonymous", "RegistryAuthFailed")
    assert auth_registry.address in stalled["message"]
    assert "spec.imagePullSecrets" in stalled["message"]
    anonymous = ws.get("anonymous")
    ready = condition(anonymous, "Ready")
    assert ready is not None
    assert ready["status"] == "False"
    assert ws.containers("anonymous") == []
    leaked = credentials["password"] in ws.controller_logs() + ws.describe("private") + str(obj)
    assert not leaked, "the registry password is visible"
