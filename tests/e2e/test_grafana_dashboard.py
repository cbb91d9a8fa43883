"""deploy/grafana/workspace-controller.json proven against a real Prometheus, and drawn.

First the model itself: an importable dashboard (no `__inputs`, a `datasource` variable every query uses,
unique panel ids, a gridPos layout inside the 24 columns with no overlaps) whose every query reads metrics
controller/metrics.py registers. Then the real thing: Debian's Prometheus scrapes a controller while a
small fleet lives through what the panels are about (Workspaces at tiers 1 to 3, those at 1 and 2 going
Ready, two Stalled for different reasons, one of them PolicyDenied, a container `docker kill`ed and
started again, orphans the sweep removes), until every target of every panel returns data over the
test's window; then the dashboard is drawn from those answers (tests/support/grafana.py) into a PNG.

README's picture is made by this test: with `WC_DASHBOARD_PICTURE` set to a path (relative to the
repository's root, or absolute) the picture is written there as well, after half a minute more of the
settled fleet so that its panels show a timeline, e.g.

    WC_DASHBOARD_PICTURE=docs/images/dashboard.png .venv/bin/python -m pytest \\
        tests/e2e/test_grafana_dashboard.py -k real
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import secrets
import struct
import time
import uuid
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from controller import metrics
from controller.core.causes import Reason
from tests.support import grafana, workspaces
from tests.support.polling import wait_until
from tests.support.prometheus import exposed_series, metric_names, query
from tests.support.prometheus import prometheus_fixture as prometheus_fixture
from tests.support.stack import REPO, Registry
from tests.support.workspaces import WorkspaceHarness, is_ready, workspace_manifest

pytestmark = pytest.mark.e2e

RATE_INTERVAL = "4s"  # Grafana's $__rate_interval for a 1 s scrape at this zoom: 4 scrape intervals
STEP = 1.0
PICTURE_ENV = "WC_DASHBOARD_PICTURE"
PICTURE_SETTLED = 30.0
"""For README's picture, seconds of the settled fleet after the drive, so its panels show a timeline."""
WORKSPACE_METRIC = re.compile(r"workspace_controller_workspace_\w+")


# --- the model --------------------------------------------------------------------------------------------


def test_the_dashboard_is_an_importable_grafana_model() -> None:
    dashboard = grafana.load()
    assert dashboard["uid"] == "workspace-controller"
    assert dashboard["schemaVersion"] >= 39
    assert "__inputs" not in dashboard
    assert dashboard["id"] is None
    assert "workspace-controller" in dashboard["tags"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == ("datasource", "prometheus")
    namespace = variables["namespace"]
    assert namespace["definition"] == "label_values(workspace_controller_workspace_info, namespace)"
    assert (namespace["includeAll"], namespace["allValue"]) == (True, ".*")
    assert namespace["datasource"]["uid"] == grafana.DATASOURCE

    panels = grafana.panels(dashboard)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    taken: dict[tuple[int, int], str] = {}
    for panel in panels:
        title, grid = panel["title"], panel["gridPos"]
        assert grid["w"] > 0, title
        assert grid["h"] > 0, title
        assert grid["x"] >= 0, title
        assert grid["x"] + grid["w"] <= grafana.GRID_COLUMNS, title
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{title!r} overlaps {taken[(x, y)]!r}"
                taken[(x, y)] = title
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": grafana.DATASOURCE}, title
        assert panel["targets"], title
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": grafana.DATASOURCE}, title

    registered = exposed_series(metrics)
    for target in grafana.targets(dashboard):
        assert metric_names(target.expr), target
        assert metric_names(target.expr) <= registered, f"{target}: not a metric the controller registers"
        assert set(re.findall(r"\[([^\]]*)\]", target.expr)) <= {"$__rate_interval"}, target
        # Every Workspace's series is filtered by the namespace variable, as a regex: All (.*) and a
        # choice of several ((a|b)) both work.
        if WORKSPACE_METRIC.search(target.expr):
            selectors = re.findall(r"workspace_controller_workspace_\w+\{([^}]*)\}", target.expr)
            assert selectors, target
            assert all('namespace=~"$namespace"' in selector for selector in selectors), target
        grafana.substitute(target.expr, rate_interval="1m")  # no variable a plain Prometheus lacks


def test_grafana_variables_are_substituted_for_a_plain_prometheus() -> None:
    expr = 'sum(rate(x_total{namespace=~"$namespace", a="${datasource}"}[$__rate_interval]))'
    with pytest.raises(ValueError, match="datasource"):
        grafana.substitute(expr, rate_interval="10s")
    plain = 'sum(rate(x_total{namespace=~"$namespace"}[${__rate_interval}]))'
    assert grafana.substitute(plain, rate_interval="10s") == 'sum(rate(x_total{namespace=~".*"}[10s]))'
    assert grafana.legend_name("{{method}} {{code}}", {"method": "GET", "code": "200"}) == "GET 200"


# --- the real thing ---------------------------------------------------------------------------------------


def make_orphan(ws: WorkspaceHarness, image: str, policy: str = "Delete") -> tuple[str, str]:
    """A container and a volume labelled for this test's controller, of a Workspace that never existed
    (the harness removes whatever the sweep leaves: a Retain volume)."""
    uid = str(uuid.uuid4())
    labels = {
        workspaces.MANAGED_LABEL: "true",
        workspaces.INSTANCE_LABEL: ws.instance,
        workspaces.UID_LABEL: uid,
        workspaces.NAMESPACE_LABEL: ws.namespace,
        workspaces.NAME_LABEL: "never-was",
        workspaces.DELETION_POLICY_LABEL: policy,
    }
    volume = ws.docker.volumes.create(name=f"ws-{uid[:12]}-configs", labels=labels)
    container = ws.docker.containers.run(image, name=f"ws-{uid[:12]}", labels=labels, detach=True)
    return str(container.id), str(volume.name)


def gone(ws: WorkspaceHarness, container: str, volume: str) -> bool:
    for get, key in ((ws.docker.containers.get, container), (ws.docker.volumes.get, volume)):
        with contextlib.suppress(docker.errors.NotFound):
            get(key)
            return False
    return True


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def test_every_panel_has_data_from_a_real_prometheus_and_the_dashboard_is_drawn(
    ws: WorkspaceHarness, registry: Registry, prometheus: tuple[str, int], tmp_path: Path
) -> None:
    url, metrics_port = prometheus
    dashboard = grafana.load()
    ws.grant(tiers=[3])  # tier 4 stays ungranted: that Workspace is Stalled/PolicyDenied
    ws.start_controller(
        WC_METRICS_PORT=str(metrics_port),
        WC_RESYNC_SECONDS="1",
        WC_SWEEP_INTERVAL="1",
        WC_SWEEP_GRACE="1",
        WC_LEADER_ELECT="true",  # for leader_election_master_status
        WC_LEASE_NAMESPACE="workspace-controller",  # where deploy/'s Role grants Leases
        WC_LEASE_NAME=f"wc-e2e-{secrets.token_hex(4)}",
    )
    wait_until(
        lambda: query(url, 'up{job="workspace-controller"} == 1'), timeout=60, what="the controller scraped"
    )
    started = time.time()  # the window the panels show: from the first scrape, before any Workspace
    fleet: dict[str, dict[str, Any]] = {
        "sandboxed": {"tier": 1},
        "standard": {"tier": 2, "runtime": "crewai"},
    }
    for name, spec in fleet.items():
        ws.apply(workspace_manifest(name, spec))
    # Tier 3 is privileged, which some test hosts refuse to start: there it stays not Ready, its failed
    # starts counted as reconcile errors (a panel of their own). It is not waited for.
    ws.apply(workspace_manifest("privileged", {"tier": 3, "runtime": "claude-code"}))
    ws.apply(workspace_manifest("full-host", {"tier": 4}))
    ws.apply(
        workspace_manifest("no-image", {"image": registry.image("langgraph", f"gone-{secrets.token_hex(3)}")})
    )
    for name in fleet:
        ws.wait_ready(name)
    ws.wait_stalled("full-host", Reason.POLICY_DENIED)
    ws.wait_stalled("no-image", Reason.IMAGE_NOT_FOUND)

    # Docker kills a container; the controller starts it again.
    killed = ws.container("standard")
    first_start = killed.attrs["State"]["StartedAt"]
    killed.kill()

    def started_again() -> bool:
        killed.reload()
        return bool(killed.attrs["State"]["Running"] and killed.attrs["State"]["StartedAt"] != first_start)

    wait_until(started_again, timeout=60, what="the killed container started again")
    ws.wait_for("standard", is_ready, "Ready again after the kill")

    # Orphans: a removal counter appears with its first removal, which increase() cannot see, so a
    # second one follows; with it one whose volume is to be retained, which later passes skip.
    first = make_orphan(ws, registry.image("langgraph"))
    wait_until(functools.partial(gone, ws, *first), timeout=30, what="the first orphan swept")
    second = make_orphan(ws, registry.image("langgraph"))
    retained, kept_volume = make_orphan(ws, registry.image("langgraph"), policy="Retain")
    wait_until(functools.partial(gone, ws, *second), timeout=30, what="the second orphan swept")
    wait_until(
        lambda: not ws.docker.containers.list(all=True, filters={"id": retained}),
        timeout=30,
        what="the orphan with a Retain volume swept",
    )
    assert ws.docker.volumes.get(kept_volume)
    # The drive's end has reached Prometheus: all three removals, and later passes skipping that volume
    # (its container gone).
    removed = 'workspace_controller_sweep_removed_total{kind="container"} >= 3'
    skipped = (
        f'increase(workspace_controller_sweep_skipped_total{{reason="no-container"}}[{RATE_INTERVAL}]) > 0'
    )
    wait_until(
        lambda: query(url, removed) and query(url, skipped),
        timeout=30,
        what="the sweep's removals and skips scraped",
    )
    scraped = time.time()
    picture_wanted = os.environ.get(PICTURE_ENV)

    def every_panel_has_data() -> tuple[float, grafana.Results]:
        end = time.time()
        # A range query answers at start + k * step: its last answer is to be no older than the instant
        # queries above, or what they saw may be missing from it.
        if end - STEP < scraped:
            raise AssertionError("the range does not reach the drive's end yet")
        if picture_wanted and end < scraped + PICTURE_SETTLED:
            raise AssertionError("the picture's timeline is still short")
        results = grafana.fetch(
            url, dashboard, start=started, end=end, step=STEP, rate_interval=RATE_INTERVAL
        )
        empty = grafana.empty(dashboard, results)
        if empty:
            raise AssertionError("panels still without data: " + "; ".join(str(t) for t in empty))
        return end, results

    polled = time.monotonic()
    end, results = wait_until(
        every_panel_has_data, timeout=60 + PICTURE_SETTLED, interval=1, what="every panel has data"
    )
    print(f"dashboard: {len(results)} targets with data {time.monotonic() - polled:.1f}s after the drive")

    picture = grafana.render(
        dashboard, results, tmp_path / "dashboard.png", start=started, end=end, subtitle="namespace: All"
    )
    width, height = png_size(picture)
    assert width >= 1000
    assert height >= 1000
    assert picture.stat().st_size > 50_000, "a drawn dashboard, not an empty canvas"
    if picture_wanted:
        target = REPO / picture_wanted
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(picture.read_bytes())
        print(f"dashboard picture written to {target}")
