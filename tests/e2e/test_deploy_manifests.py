"""What a user applies from deploy/ is accepted by a real apiserver as it is written: each kustomization
builds with kubectl's own kustomize, and every object passes a server-side dry run (schema, CEL,
admission), so a typo in a Deployment, a PodDisruptionBudget or a Role is caught here, not in a cluster.

Then, on a control plane of its own (cluster-wide objects are applied for real), `kubectl apply -k deploy/`
as a user runs it: everything a cluster without kubelets can hold is created, a second apply changes
nothing and `kubectl diff` is clean (no GitOps tool sees drift from server defaulting). The monitoring
overlay is refused until the Prometheus Operator's CRDs exist, then is accepted by the schemas that
operator publishes (pinned release, from the Go module proxy: hack/prometheus-operator-crds.sh), which
do refuse a malformed ServiceMonitor.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from controller.api.crd import RESOURCES
from tests.support.kubectl import Kubectl, KubectlError
from tests.support.stack import HACK, REPO, ControlPlane, run_script

pytestmark = pytest.mark.e2e


def kinds(manifest: str) -> list[str]:
    return sorted(str(doc["kind"]) for doc in yaml.safe_load_all(manifest) if doc)


def test_deploy_base_builds_and_every_object_is_accepted(installed: Kubectl) -> None:
    built = installed.run("kustomize", str(REPO / "deploy" / "base"))
    assert kinds(built) == sorted(
        [
            "ClusterRole",
            "ClusterRoleBinding",
            *["CustomResourceDefinition"] * len(RESOURCES),
            "Deployment",
            "Namespace",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            *["ValidatingAdmissionPolicy"] * 2,  # the workspace policies, and the templates' pinned fields
            *["ValidatingAdmissionPolicyBinding"] * 2,
        ]
    )
    installed.run("apply", "--dry-run=server", "-f", "-", stdin=built)
    deployment = next(doc for doc in yaml.safe_load_all(built) if doc and doc["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["WC_LEADER_ELECT"] == "true"


def test_the_namespaced_rbac_and_the_samples_are_accepted(installed: Kubectl, namespace: str) -> None:
    built = installed.run("kustomize", str(REPO / "deploy" / "namespaced"))
    target = next(doc for doc in yaml.safe_load_all(built) if doc)["metadata"]["namespace"]
    installed.run("create", "namespace", target, check=False)
    installed.run("apply", "--dry-run=server", "-f", "-", stdin=built)
    samples = REPO / "deploy" / "samples"
    for sample in sorted(samples.glob("*.yaml")):
        installed.in_namespace(namespace).run("apply", "--dry-run=server", "-f", str(sample))
    installed.run("apply", "--dry-run=server", "-f", str(REPO / "crds"))


def _objects(manifest: str) -> list[tuple[str, str, str]]:
    return sorted(
        (str(doc["kind"]), str(doc["metadata"].get("namespace", "")), str(doc["metadata"]["name"]))
        for doc in yaml.safe_load_all(manifest)
        if doc
    )


def _versions(kubectl: Kubectl, manifest: str) -> dict[tuple[str, str, str], str]:
    versions = {}
    for kind, namespace, name in _objects(manifest):
        where = ["-n", namespace] if namespace else []
        versions[(kind, namespace, name)] = kubectl.run(
            "get", kind.lower(), name, *where, "-o", "jsonpath={.metadata.resourceVersion}"
        )
    return versions


def _diff_is_clean(kubectl: Kubectl, *args: str) -> None:
    result = subprocess.run(
        [kubectl.binary, "--kubeconfig", str(kubectl.kubeconfig), "diff", *args],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, (
        f"kubectl diff {' '.join(args)} ({result.returncode}):\n{result.stdout}{result.stderr}"
    )


def test_deploy_applies_for_real_and_a_second_apply_changes_nothing(own_control_plane: ControlPlane) -> None:
    admin = Kubectl(own_control_plane.kubectl, own_control_plane.admin_kubeconfig)
    deploy = str(REPO / "deploy")
    built = admin.run("kustomize", deploy)
    assert built == admin.run("kustomize", str(REPO / "deploy" / "base")), "deploy/ is the base as shipped"
    admin.run("apply", "-k", deploy)
    admin.run("wait", "--for=condition=Established", "--timeout=60s", "crd/workspaces.molecule.ai")
    before = _versions(admin, built)
    again = admin.run("apply", "-k", deploy)
    # kubectl re-sends a PodDisruptionBudget's selector on every apply (its patch strategy is
    # `replace`) and calls that "configured"; the object is not written. Anything else is drift.
    said = [line for line in again.splitlines() if not line.endswith(" unchanged")]
    assert said == ["poddisruptionbudget.policy/workspace-controller configured"], said
    assert _versions(admin, built) == before, "a second apply wrote an object"
    _diff_is_clean(admin, "-k", deploy)

    admin.run("create", "namespace", "workspaces")
    admin.run("apply", "-k", str(REPO / "deploy" / "namespaced"))
    _diff_is_clean(admin, "-k", str(REPO / "deploy" / "namespaced"))
    for sample in ("workspacepolicy.yaml", "dockerhost.yaml"):
        admin.run("apply", "-f", str(REPO / "deploy" / "samples" / sample))
        _diff_is_clean(admin, "-f", str(REPO / "deploy" / "samples" / sample))
    # No controller has ever run here (no kubelets), so admission has no EffectiveWorkspacePolicy to judge
    # by: it fails closed, as deploy/admission says.
    with pytest.raises(KubectlError, match="no params found"):
        admin.in_namespace("workspaces").run(
            "apply", "-f", str(REPO / "deploy" / "samples" / "workspace.yaml")
        )


def test_the_monitoring_overlay_is_accepted_by_the_operators_own_schemas(
    own_control_plane: ControlPlane, tmp_path: Path
) -> None:
    admin = Kubectl(own_control_plane.kubectl, own_control_plane.admin_kubeconfig)
    overlay = str(REPO / "deploy" / "prometheus")
    assert kinds(admin.run("kustomize", overlay)) == ["PrometheusRule", "ServiceMonitor"]
    admin.run("apply", "-k", str(REPO / "deploy"))
    with pytest.raises(KubectlError, match="ServiceMonitor"):  # why it is an overlay of its own
        admin.run("apply", "--dry-run=server", "-k", overlay)

    crds = Path(run_script("bash", HACK / "prometheus-operator-crds.sh").strip().splitlines()[-1])
    for kind in ("servicemonitors", "prometheusrules"):
        admin.run("apply", "--server-side", "-f", str(crds / f"monitoring.coreos.com_{kind}.yaml"))
        admin.run("wait", "--for=condition=Established", "--timeout=60s", f"crd/{kind}.monitoring.coreos.com")
    admin.run("apply", "--dry-run=server", "-k", overlay)
    admin.run("apply", "-k", overlay)
    _diff_is_clean(admin, "-k", overlay)

    monitor = yaml.safe_load((REPO / "deploy" / "prometheus" / "servicemonitor.yaml").read_text())
    monitor["metadata"]["name"] = "malformed"
    monitor["spec"]["endpoints"][0]["interval"] = "half a minute"
    with pytest.raises(KubectlError, match="interval"):  # the schema is enforced, not just present
        admin.run("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(monitor))
