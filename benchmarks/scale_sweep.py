"""Scenario 5, the orphan sweep: M labelled containers of Workspaces that do not exist, among decoys."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from benchmarks.scale_metrics import by_label
from benchmarks.scale_raw import cheap_containers, raw_remove
from benchmarks.stack_session import RUN_LABEL, StackSession
from tests.support.metrics import scrape
from tests.support.workspaces import INSTANCE_LABEL, MANAGED_LABEL, NAME_LABEL, NAMESPACE_LABEL, UID_LABEL

FAST_SWEEP = {"WC_SWEEP_INTERVAL": "1", "WC_SWEEP_GRACE": "0"}


@dataclass(frozen=True)
class Sweep:
    orphans: int
    decoys: int
    up_seconds: float  # controller start until its metrics endpoint answers
    seconds: float  # controller start until the sweep counted every orphan removed
    raw_seconds: float


def _orphan(instance: str) -> dict[str, str]:
    uid = str(uuid.uuid4())
    return {
        MANAGED_LABEL: "true",
        INSTANCE_LABEL: instance,
        UID_LABEL: uid,
        NAMESPACE_LABEL: "gone",
        NAME_LABEL: uid,
    }


def _decoy(instance: str, n: int) -> dict[str, str]:
    """Alternately: this instance's labels without the managed label, and another instance's orphan."""
    if n % 2:
        return {**_orphan(f"{instance}-other")}
    labels = _orphan(instance)
    del labels[MANAGED_LABEL]
    return labels


def sweep(session: StackSession, orphans: int, decoys: int) -> Sweep:
    instance = session.instance("sweep")
    cheap_containers(session, [_orphan(instance) for _ in range(orphans)])
    decoy_ids = set(cheap_containers(session, [_decoy(instance, n) for n in range(decoys)]))
    started = time.perf_counter()
    controller = session.start_controller(instance, **FAST_SWEEP)
    up = time.perf_counter() - started
    deadline = started + 60 + 1.0 * orphans
    while (
        by_label(scrape(controller.port), "workspace_controller_sweep_removed_total", "kind").get(
            "container", 0
        )
        < orphans
    ):
        if time.perf_counter() > deadline:
            raise TimeoutError(f"the sweep did not remove {orphans} orphans in time")
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    controller.proc.stop()
    left = session.docker.containers.list(
        all=True, filters={"label": [f"{MANAGED_LABEL}=true", f"{INSTANCE_LABEL}={instance}"]}
    )
    if left:
        raise RuntimeError(f"{len(left)} orphans still there after the sweep counted them removed")
    present = {
        c.id
        for c in session.docker.containers.list(all=True, filters={"label": f"{RUN_LABEL}={session.run_id}"})
    }
    if decoy_ids - present:
        raise RuntimeError(f"the sweep removed {len(decoy_ids - present)} decoys it had to leave alone")
    for container_id in decoy_ids:
        session.docker.api.remove_container(container_id, force=True)
    return Sweep(orphans, decoys, up, seconds, raw_remove(session, orphans))
