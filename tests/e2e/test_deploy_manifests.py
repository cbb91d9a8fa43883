"""What a user applies from deploy/ is accepted by a real apiserver as it is written: each kustomization
builds with kubectl's own kustomize, and every object passes a server-side dry run (schema, CEL,
admission), so a typo in a Deployment, a PodDisruptionBudget or a Role is caught here, not in a cluster.
"""

from __future__ import annotations

import pytest
import yaml

from tests.support.kubectl import Kubectl
from tests.support.stack import REPO

pytestmark = pytest.mark.e2e


def kinds(manifest: str) -> list[str]:
    return sorted(str(doc["kind"]) for doc in yaml.safe_load_all(manifest) if doc)


def test_deploy_base_builds_and_every_object_is_accepted(installed: Kubectl) -> None:
    built = installed.run("kustomize", str(REPO / "deploy" / "base"))
    assert kinds(built) == sorted(
        [
            "ClusterRole",
            "ClusterRoleBinding",
            *["CustomResourceDefinition"] * 4,
            "Deployment",
            "Namespace",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
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
