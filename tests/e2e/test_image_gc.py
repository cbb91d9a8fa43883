"""The image GC against the real Docker Engine: a workspace image no container uses is removed after the
delay; the image a running Workspace uses and an image outside the workspace registry prefix stay."""

from __future__ import annotations

import contextlib
import io
import secrets

import docker
import docker.errors
import pytest
from docker.models.images import Image

from tests.support.metrics import ControllerMetrics
from tests.support.polling import wait_until
from tests.support.stack import Registry
from tests.support.workspaces import WorkspaceHarness, workspace_manifest

pytestmark = pytest.mark.e2e


def present(client: docker.DockerClient, image: Image) -> bool:
    try:
        client.images.get(image.id)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_an_unused_workspace_image_goes_and_images_in_use_or_elsewhere_stay(
    ws: WorkspaceHarness, registry: Registry, docker_client: docker.DockerClient
) -> None:
    token = secrets.token_hex(4)
    prefix = f"{registry.address}/gc-{token}"  # this test's own prefix: nothing else's images are judged
    base = registry.image("langgraph")
    docker_client.images.pull(base)
    made: list[Image] = []

    def build(tag: str, label: str) -> Image:
        dockerfile = io.BytesIO(f"FROM {base}\nLABEL gc-test={label}-{token}\n".encode())
        image, _ = docker_client.images.build(fileobj=dockerfile, tag=tag, rm=True)
        made.append(image)
        return image

    try:
        current = build(f"{prefix}/workspace-template-langgraph:latest", "current")
        old = build(f"{prefix}/workspace-template-langgraph:old", "old")
        outside = build(f"outside.invalid/gc-{token}/workspace-template-langgraph:1", "outside")
        proc = ws.start_controller(
            MOLECULE_IMAGE_REGISTRY=prefix, WC_IMAGE_GC_AFTER="3", WC_IMAGE_GC_INTERVAL="1"
        )
        ws.apply(workspace_manifest("gc", {"imagePullPolicy": "IfNotPresent"}))
        obj = ws.wait_ready("gc")
        assert obj["status"]["container"]["imageID"] == current.id

        wait_until(lambda: not present(docker_client, old), timeout=60, what="the unused image removed")
        metrics = ControllerMetrics.of(proc)
        assert metrics.value("workspace_controller_image_gc_removed_total", host="local") >= 1
        start = metrics.value("workspace_controller_image_gc_passes_total", host="local", outcome="completed")
        wait_until(
            lambda: (
                metrics.value("workspace_controller_image_gc_passes_total", host="local", outcome="completed")
                >= start + 5
            ),
            timeout=30,
            what="five more GC passes",
        )
        assert present(docker_client, current)
        assert present(docker_client, outside)
        assert ws.get("gc")["status"]["container"]["id"] == obj["status"]["container"]["id"]
    finally:
        for image in made:
            with contextlib.suppress(docker.errors.APIError):
                docker_client.images.remove(image.id, force=True)
