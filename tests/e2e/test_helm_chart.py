"""The Helm chart (deploy/helm/workspace-controller) is deploy/ as a chart: with its default values it renders
exactly the objects `kubectl kustomize deploy/` builds, with monitoring on also those of deploy/prometheus,
other values change only what they name, what it renders passes a server-side dry run, and `helm install`,
`upgrade` and `uninstall` work as the chart's README says (on a control plane of the test's own).

helm is built beside kubectl (hack/build-controlplane.sh) and found the same way: next to WC_KUBECTL.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.kubectl import Kubectl
from tests.support.stack import REPO, ControlPlane

pytestmark = pytest.mark.e2e

CHART = REPO / "deploy" / "helm" / "workspace-controller"
RELEASE = NAMESPACE = "workspace-controller"  # the names deploy/ uses
MONITORING = ("monitoring.serviceMonitor.enabled=true", "monitoring.prometheusRule.enabled=true")

Key = tuple[str, str, str, str]  # apiVersion, kind, namespace ("" when cluster-scoped), name
Objects = dict[Key, dict[str, Any]]


@dataclass(frozen=True)
class Helm:
    binary: Path
    home: Path  # its config, cache and data: nothing of the user's is read or written

    def run(self, *args: str) -> str:
        env = {**os.environ, **{f"HELM_{d}_HOME": str(self.home / d) for d in ("CONFIG", "CACHE", "DATA")}}
        result = subprocess.run(
            [str(self.binary), *args], env=env, capture_output=True, text=True, timeout=120
        )
        # stderr always has a line per symbolic link in the chart: shown only when helm fails.
        assert result.returncode == 0, f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
        return result.stdout

    def render(self, *values: str, release: str = RELEASE, namespace: str = NAMESPACE) -> str:
        sets = [arg for value in values for arg in ("--set", value)]
        return self.run("template", release, str(CHART), "--namespace", namespace, "--include-crds", *sets)


@pytest.fixture(scope="module")
def helm(kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = Path(kubectl.binary).with_name("helm")
    assert binary.exists(), f"{binary} is missing: hack/build-controlplane.sh builds it beside kubectl"
    return Helm(binary, tmp_path_factory.mktemp("helm-home"))


def objects(manifest: str) -> Objects:
    found: Objects = {}
    for doc in yaml.safe_load_all(manifest):
        if not doc:
            continue
        meta = doc["metadata"]
        key = (str(doc["apiVersion"]), str(doc["kind"]), str(meta.get("namespace", "")), str(meta["name"]))
        assert key not in found, f"{key} twice"
        found[key] = doc
    return found


def kustomize(kubectl: Kubectl, *directories: str) -> Objects:
    built: Objects = {}
    for directory in directories:
        built.update(objects(kubectl.run("kustomize", str(REPO / directory))))
    return built


def assert_same(expected: Objects, rendered: Objects) -> None:
    """The same objects, field for field; on failure, which are missing or extra and a diff of each other."""
    problems = [f"missing from the chart: {key}" for key in sorted(expected.keys() - rendered.keys())]
    problems += [f"only in the chart: {key}" for key in sorted(rendered.keys() - expected.keys())]
    for key in sorted(expected.keys() & rendered.keys()):
        want, got = expected[key], rendered[key]
        if want != got:
            diff = difflib.unified_diff(
                yaml.safe_dump(want, sort_keys=True).splitlines(),
                yaml.safe_dump(got, sort_keys=True).splitlines(),
                "expected",
                "chart",
                lineterm="",
            )
            problems.append(f"differs: {key}\n" + "\n".join(diff))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_the_chart_passes_helm_lint_strict(helm: Helm) -> None:
    for values in ((), MONITORING):
        out = helm.run("lint", "--strict", str(CHART), *[a for v in values for a in ("--set", v)])
        assert "0 chart(s) failed" in out, out


def test_the_default_values_render_what_kustomize_builds_of_deploy(helm: Helm, kubectl: Kubectl) -> None:
    assert_same(kustomize(kubectl, "deploy"), objects(helm.render()))


def test_monitoring_on_adds_the_objects_of_deploy_prometheus(helm: Helm, kubectl: Kubectl) -> None:
    expected = kustomize(kubectl, "deploy", "deploy/prometheus")
    assert len(expected) == len(kustomize(kubectl, "deploy")) + 2
    assert_same(expected, objects(helm.render(*MONITORING)))


def test_other_values_change_exactly_what_they_name(helm: Helm) -> None:
    expected = objects(helm.render())
    del expected["v1", "Namespace", "", NAMESPACE]
    for kind in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"):
        for name in ("workspace-policy.molecule.ai", "workspacetemplates.molecule.ai"):
            del expected["admissionregistration.k8s.io/v1", kind, "", name]
    deployment = expected["apps/v1", "Deployment", NAMESPACE, RELEASE]
    deployment["spec"]["replicas"] = 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["image"] = "registry.example.com/workspace-controller:v9.8.7"
    # The gateways of isolated Workspaces run from the controller's image: named by the same values.
    next(e for e in container["env"] if e["name"] == "WC_GATEWAY_IMAGE")["value"] = container["image"]
    rendered = objects(
        helm.render(
            "image.repository=registry.example.com/workspace-controller",
            "image.tag=v9.8.7",
            "replicaCount=3",
            "admissionPolicy.enabled=false",
            "namespace.create=false",
        )
    )
    assert_same(expected, rendered)


def test_without_leader_election_one_replica_is_replaced_not_rolled(helm: Helm) -> None:
    expected = objects(helm.render())
    for kind in ("Role", "RoleBinding"):
        del expected["rbac.authorization.k8s.io/v1", kind, NAMESPACE, f"{RELEASE}-leader-election"]
    spec = expected["apps/v1", "Deployment", NAMESPACE, RELEASE]["spec"]
    spec["replicas"] = 1
    spec["strategy"] = {"type": "Recreate"}
    env = spec["template"]["spec"]["containers"][0]["env"]
    next(e for e in env if e["name"] == "WC_LEADER_ELECT")["value"] = "false"
    assert_same(expected, objects(helm.render("leaderElection.enabled=false", "replicaCount=1")))

    with pytest.raises(AssertionError, match=re.escape("replicaCount > 1 needs leaderElection.enabled")):
        helm.render("leaderElection.enabled=false")


def test_every_rendered_object_is_accepted_by_the_apiserver(
    helm: Helm, installed: Kubectl, namespace: str
) -> None:
    # The defaults (the namespace and cluster-wide objects of deploy/, applied by `installed` already),
    # then another release in a namespace that exists, with extra values on. The monitoring objects are
    # not here: the Prometheus Operator's CRDs are not installed (test_prometheus covers the rules).
    installed.run("apply", "--dry-run=server", "-f", "-", stdin=helm.render())
    other = helm.render(
        "namespace.create=false",
        "admissionPolicy.enabled=false",
        "leaderElection.enabled=false",
        "replicaCount=1",
        "extraEnv[0].name=MOLECULE_IMAGE_REGISTRY",
        "extraEnv[0].value=registry.example.com/molecule-ai",
        "nodeSelector.kubernetes\\.io/os=linux",
        "podAnnotations.example\\.com/owner=tests",
        release="second",
        namespace=namespace,
    )
    rendered = objects(other)
    assert ("apps/v1", "Deployment", namespace, "second-workspace-controller") in rendered
    assert ("rbac.authorization.k8s.io/v1", "ClusterRole", "", "second-workspace-controller") in rendered
    installed.run("apply", "--dry-run=server", "-f", "-", stdin=other)


def test_helm_install_upgrade_and_uninstall(helm: Helm, own_control_plane: ControlPlane) -> None:
    # Its own control plane: the release's cluster-wide objects (admission policy included) are created
    # for real, which the session's shared one must not get.
    plane = own_control_plane
    admin = Kubectl(plane.kubectl, plane.admin_kubeconfig)
    # As the README says: helm stores the release in the namespace before it creates any object, so
    # with `helm install` the namespace is helm's (--create-namespace), not the chart's.
    install = ["--namespace", NAMESPACE, "--kubeconfig", str(plane.admin_kubeconfig)]
    values = ["--create-namespace", "--set", "namespace.create=false"]
    helm.run("install", RELEASE, str(CHART), *install, *values)
    rendered = objects(helm.render("namespace.create=false"))
    for _, kind, namespace, name in rendered:
        admin.run("get", kind.lower(), name, *(["-n", namespace] if namespace else []), "-o", "name")

    helm.run("upgrade", RELEASE, str(CHART), *install, *values, "--set", "replicaCount=3")
    assert admin.get_json("deployment", RELEASE, "-n", NAMESPACE)["spec"]["replicas"] == 3

    helm.run("uninstall", RELEASE, *install)
    for _, kind, namespace, name in rendered:
        where = ["-n", namespace] if namespace else []
        left = admin.run("get", kind.lower(), name, *where, "--ignore-not-found", "-o", "name")
        # Helm never deletes the CRDs of crds/ (nor, then, the Workspaces in them).
        assert bool(left) == (kind == "CustomResourceDefinition"), f"{kind} {name}: {left!r}"
