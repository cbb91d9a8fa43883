"""A registry that is down, or that hangs, against a real Docker daemon and a real registry process.

Down: a cached image is used where the pull policy allows it (unset: the Go provisioner's resilience
rule); with `Always` the Workspace says so (Synced=False naming the registry) and recovers by itself
when the registry returns. Hanging (it accepts the connection and never answers): other Workspaces keep
reconciling, and deleting the Workspace that waits on the pull does not wait for it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.polling import wait_until
from tests.support.stack import HACK, Registry, push_test_images, run_script, start_registry
from tests.support.workspaces import WorkspaceHarness, condition, is_ready, workspace_manifest

pytestmark = pytest.mark.e2e

PULL_REPORTED = 30.0


class BlackHole:
    """A TCP port on loopback that accepts connections and never says a word (a hung registry)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._held: list[socket.socket] = []
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._held.append(conn)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry of this test's own, which it may stop and start again on the same port."""
    registry = start_registry("faults", tmp_path)
    push_test_images(registry)
    yield registry
    registry.stop()


def _restart(registry: Registry) -> None:
    port = registry.address.rsplit(":", 1)[1]
    run_script(
        "bash",
        HACK / "stack" / "registry.sh",
        "start",
        registry.name,
        port,
        env={"WC_STATE_DIR": str(registry.state_dir)},
    )


def test_a_registry_that_is_down_falls_back_to_the_cache_or_says_so_and_recovery_follows(
    ws: WorkspaceHarness, own_registry: Registry
) -> None:
    ws.grant(images=[{"prefix": f"{own_registry.address}/"}])
    image = own_registry.image("langgraph")  # :latest, a moving tag: re-pulled on every recreate
    ws.apply(workspace_manifest("cached", {"image": image}))
    ws.apply(workspace_manifest("strict", {"image": image, "imagePullPolicy": "Always"}))
    ws.start_controller()
    ws.wait_ready("cached")
    ws.wait_ready("strict")

    own_registry.stop()
    for name in ("cached", "strict"):
        ws.patch_spec(name, {"restartRequestedAt": "registry-down"})

    recreated = ws.wait_for(
        "cached",
        lambda obj: is_ready(obj) and obj["status"].get("lastHandledRestartAt") == "registry-down",
        "recreated from the cached image",
    )
    assert recreated["status"]["container"]["image"] == image

    def says_so(obj: dict[str, Any]) -> bool:
        synced = condition(obj, "Synced") or {}
        return synced.get("status") == "False" and own_registry.address in str(synced.get("message"))

    strict = ws.wait_for("strict", says_so, "Synced=False naming the registry")
    assert (condition(strict, "Stalled") or {}).get("status") != "True"  # transient: retried, not stalled

    _restart(own_registry)
    healed = ws.wait_for(
        "strict",
        lambda obj: is_ready(obj) and obj["status"].get("lastHandledRestartAt") == "registry-down",
        "Ready once the registry is back",
        timeout=120,
    )
    assert healed["status"]["container"]["image"] == image


def test_a_hung_registry_neither_blocks_other_workspaces_nor_the_deletion_of_the_one_pulling(
    ws: WorkspaceHarness, black_hole: BlackHole
) -> None:
    ws.grant(images=[{"prefix": f"{black_hole.address}/"}])
    ws.start_controller()
    ws.apply(workspace_manifest("stuck", {"image": f"{black_hole.address}/agents/agent:1"}))

    def pulling(obj: dict[str, Any]) -> bool:
        return (condition(obj, "Reconciling") or {}).get("reason") == "Pulling"

    ws.wait_for("stuck", pulling, "Reconciling/Pulling while the registry hangs", timeout=PULL_REPORTED)

    ws.apply(workspace_manifest("bystander"))
    ws.wait_ready("bystander")  # reconciled while the other pull still hangs

    ws.kubectl.run("delete", "--wait=false", "workspace", "stuck")
    wait_until(
        lambda: "stuck" not in ws.kubectl.run("get", "workspaces", "-o", "name"),
        timeout=30,
        what="the deletion done without waiting for the hung pull",
    )
