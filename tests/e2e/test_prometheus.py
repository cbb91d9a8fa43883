"""deploy/prometheus against Debian's Prometheus: the rules pass `promtool check rules` and unit tests
that fire and clear every alert (tests/prometheus/alerts-test.yaml), and a real Prometheus scraping the
running controller has every metric the rules query, with the label values they match on."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from controller.port import errors
from tests.support.polling import wait_until
from tests.support.prometheus import RULES, metric_names, plain_rules, query
from tests.support.prometheus import prometheus_fixture as prometheus_fixture
from tests.support.stack import REPO
from tests.support.workspaces import WorkspaceHarness, workspace_manifest

pytestmark = pytest.mark.e2e

ALERT_TESTS = REPO / "tests" / "prometheus" / "alerts-test.yaml"
PROMTOOL = shutil.which("promtool") or "promtool"


def exprs() -> list[str]:
    rule = yaml.safe_load(RULES.read_text())
    return [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]


def matched_label_values(expr: str) -> set[tuple[str, str]]:
    return set(re.findall(r'(\w+)="([^"]*)"', expr))


def test_metric_names_are_read_from_the_rules() -> None:
    assert metric_names("sum by (name) (leader_election_master_status) != 1") == {
        "leader_election_master_status"
    }
    assert metric_names('sum(rate(a_total{x="y_z"}[5m])) > 0.1') == {"a_total"}


def test_promtool_checks_the_rules_and_every_alert_fires_and_clears(tmp_path: Path) -> None:
    rules = plain_rules(tmp_path)
    checked = subprocess.run([PROMTOOL, "check", "rules", str(rules)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = yaml.safe_load(ALERT_TESTS.read_text())
    tests["rule_files"] = [str(rules)]
    tested_alerts = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"]}
    rule = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"] for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r}
    assert tested_alerts == alerts, "every alert has a unit test"
    for case in tests["tests"]:  # each fires (some expected alert) and clears (an empty one after it)
        checks = [t for t in case["alert_rule_test"]]
        assert any(t["exp_alerts"] for t in checks), case["name"]
        assert checks[-1]["exp_alerts"] == [], case["name"]
    test_file = tmp_path / "alerts-test.yaml"
    test_file.write_text(yaml.safe_dump(tests))
    result = subprocess.run([PROMTOOL, "test", "rules", str(test_file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_label_values_the_rules_match_are_ones_the_controller_writes() -> None:
    outcomes = {"ok"} | {name for name in dir(errors) if isinstance(getattr(errors, name), type)}
    for expr in exprs():
        for label, value in matched_label_values(expr):
            if label == "outcome" and "docker_calls" in expr:
                assert value in outcomes, f"{expr}: no Docker call outcome is called {value!r}"
            if label == "outcome" and "sweep_passes" in expr:
                assert value in ("completed", "skipped", "dry_run"), expr


def test_a_real_prometheus_scrapes_every_metric_the_rules_query(
    ws: WorkspaceHarness, prometheus: tuple[str, int]
) -> None:
    url, metrics_port = prometheus
    ws.start_controller(
        WC_METRICS_PORT=str(metrics_port),
        WC_SWEEP_INTERVAL="1",  # the sweep's counter appears with its first pass
        WC_LEADER_ELECT="true",  # leader_election_master_status is a rule's
        WC_LEASE_NAMESPACE="workspace-controller",  # where deploy/'s Role grants Leases
        WC_LEASE_NAME=f"wc-e2e-{secrets.token_hex(4)}",
    )
    ws.apply(workspace_manifest("scraped", {}))
    ws.wait_ready("scraped")
    wait_until(
        lambda: query(url, 'up{job="workspace-controller"} == 1'), timeout=60, what="the controller scraped"
    )
    names = set().union(*(metric_names(expr) for expr in exprs()))
    started = time.monotonic()

    def missing() -> list[str]:
        return sorted(name for name in names if not query(url, f"count({name})"))

    wait_until(
        lambda: not missing(), timeout=60, what=f"every rule metric in a scrape (missing: {missing()})"
    )
    took = time.monotonic() - started
    print(f"Prometheus: {len(names)} rule metrics scraped within {took:.1f}s: {sorted(names)}")
    assert query(url, 'workspace_controller_docker_calls_total{outcome="ok"}')
    assert query(url, "workspace_controller_docker_host_ready == 1")
