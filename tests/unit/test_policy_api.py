"""The WorkspacePolicy models: what the schema (and the controller, for a stale CRD) accepts.

Pinned: a selector requirement's operator/values rule, the host-path floor under every grant (with the
`hostPaths[].path` wording), image prefixes ending in '/', tiers 1-4 without repeats, and a full sample
policy round-tripping through the model in its wire form.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from controller.api.policy import (
    EffectiveGrant,
    EffectiveWorkspacePolicy,
    HostPathGrant,
    ImageGrant,
    WorkspacePolicy,
    WorkspacePolicySpec,
)
from controller.api.selectors import LabelSelectorRequirement
from controller.api.workspace import FORBIDDEN_HOST_PATH_ROOTS
from tests.support.stack import REPO

# --- LabelSelectorRequirement --------------------------------------------------------------------------

VALUES_RULE = "In and NotIn need values; Exists and DoesNotExist take none"


@pytest.mark.parametrize(
    ("operator", "values"),
    [
        pytest.param("In", ["prod"], id="In with a value"),
        pytest.param("NotIn", ["dev", "test"], id="NotIn with values"),
        pytest.param("Exists", [], id="Exists without values"),
        pytest.param("DoesNotExist", [], id="DoesNotExist without values"),
    ],
)
def test_requirement_accepted(operator: str, values: list[str]) -> None:
    requirement = LabelSelectorRequirement.model_validate(
        {"key": "example.com/env", "operator": operator, "values": values}
    )
    assert requirement.operator == operator
    assert requirement.values == tuple(values)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"key": "env", "operator": "In"}, VALUES_RULE, id="In without values"),
        pytest.param({"key": "env", "operator": "NotIn", "values": []}, VALUES_RULE, id="NotIn empty"),
        pytest.param(
            {"key": "env", "operator": "Exists", "values": ["x"]}, VALUES_RULE, id="Exists with values"
        ),
        pytest.param(
            {"key": "env", "operator": "DoesNotExist", "values": ["x"]},
            VALUES_RULE,
            id="DoesNotExist with values",
        ),
        pytest.param(
            {"key": "env", "operator": "Equals", "values": ["x"]}, "operator", id="unknown operator"
        ),
        pytest.param(
            {"key": "env", "operator": "In", "values": ["x" * 64]},
            "63 characters",
            id="long value",
        ),
        pytest.param({"key": "not a key", "operator": "Exists"}, "pattern", id="invalid key"),
        pytest.param({"key": "-env", "operator": "Exists"}, "pattern", id="key starting with '-'"),
        pytest.param({"key": "Example.com/env", "operator": "Exists"}, "pattern", id="uppercase key prefix"),
        pytest.param(
            {"key": "env", "operator": "In", "values": [str(i) for i in range(17)]},
            "at most 16",
            id="too many values",
        ),
    ],
)
def test_requirement_refused(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LabelSelectorRequirement.model_validate(body)


# --- HostPathGrant -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/srv/agents", "/home/alice/work", "/etcetera", "/runner", "/rooted", "/opt/x.y", "/data/a-b_c"]
)
def test_host_path_grant_accepted(path: str) -> None:
    grant = HostPathGrant.model_validate({"path": path})
    assert (grant.path, grant.access) == (path, "read_only")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        pytest.param("srv/agents", "hostPaths[].path must be an absolute path", id="relative"),
        pytest.param("", "hostPaths[].path must be an absolute path", id="empty"),
        pytest.param("/srv/../etc", "hostPaths[].path must not contain '..'", id="dot-dot"),
        pytest.param("/srv//a", "hostPaths[].path must be a clean path", id="double slash"),
        pytest.param("/srv/./a", "hostPaths[].path must be a clean path", id="dot segment"),
        pytest.param("/srv/a/.", "hostPaths[].path must be a clean path", id="trailing dot"),
        pytest.param("/srv/a/", "hostPaths[].path must not end with '/'", id="trailing slash"),
        pytest.param("/", "hostPaths[].path must not end with '/'", id="the host's root"),
        pytest.param(
            "/run/docker.sock", "hostPaths[].path must not be or sit under /run", id="docker socket"
        ),
        pytest.param("/root/.ssh", "hostPaths[].path must not be or sit under /root", id="root's home"),
        *(
            pytest.param(root, f"hostPaths[].path must not be or sit under {root}", id=root)
            for root in FORBIDDEN_HOST_PATH_ROOTS
        ),
        *(
            pytest.param(f"{root}/x", f"hostPaths[].path must not be or sit under {root}", id=f"{root}/x")
            for root in FORBIDDEN_HOST_PATH_ROOTS
        ),
    ],
)
def test_host_path_grant_refused(path: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        HostPathGrant.model_validate({"path": path, "access": "read_write"})
    text = str(caught.value)
    assert message in text
    assert "workspace.hostPath" not in text


def test_the_floor_includes_run_and_root() -> None:
    assert {"/run", "/root", "/etc", "/var"} <= set(FORBIDDEN_HOST_PATH_ROOTS)


@pytest.mark.parametrize("access", ["none", "write", "ReadWrite"])
def test_host_path_grant_access_is_read_only_or_read_write(access: str) -> None:
    with pytest.raises(ValidationError, match="access"):
        HostPathGrant.model_validate({"path": "/srv/a", "access": access})


# --- ImageGrant ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    [
        "ghcr.io/team-a/",
        "ghcr.io/",
        "registry.example.com:5000/team/sub/",
        "localhost:5000/",
        "docker.io/library/",
        "quay.io/a_b/c.d/e__f/",
    ],
)
def test_image_grant_accepted(prefix: str) -> None:
    grant = ImageGrant.model_validate({"prefix": prefix})
    assert (grant.prefix, grant.digests_only) == (prefix, False)


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param("ghcr.io/team", id="no trailing slash: would cover ghcr.io/team-abc"),
        pytest.param("ghcr.io/team-a", id="no trailing slash, dashed"),
        pytest.param("ghcr.io", id="host only"),
        pytest.param("ghcr.io//", id="empty component"),
        pytest.param("/team/", id="no host"),
        pytest.param("", id="empty"),
        pytest.param("ghcr.io/Team/", id="uppercase repository"),
        pytest.param("ghcr.io/team-/", id="component ending in '-'"),
        pytest.param("https://ghcr.io/team/", id="scheme"),
        pytest.param("ghcr.io:port/team/", id="port not a number"),
        pytest.param("ghcr.io/team/image:tag/", id="tag"),
        pytest.param("ghcr.io/team/*", id="wildcard"),
    ],
)
def test_image_grant_refused(prefix: str) -> None:
    with pytest.raises(ValidationError, match="pattern"):
        ImageGrant.model_validate({"prefix": prefix})


def test_image_grant_digests_only() -> None:
    assert ImageGrant.model_validate({"prefix": "ghcr.io/a/", "digestsOnly": True}).digests_only is True


# --- WorkspacePolicySpec ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tiers", [[], [3], [4], [3, 4], [1, 2, 3, 4]])
def test_tiers_accepted(tiers: list[int]) -> None:
    spec = WorkspacePolicySpec.model_validate({"namespaceSelector": {}, "tiers": tiers})
    assert spec.tiers == tuple(tiers)


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        pytest.param([0], "greater than or equal to 1", id="0"),
        pytest.param([5], "less than or equal to 4", id="5"),
        pytest.param([3, 3], "tiers must not repeat", id="repeated"),
        pytest.param([1, 2, 3, 4, 4], "at most 4", id="five"),
    ],
)
def test_tiers_refused(tiers: list[int], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WorkspacePolicySpec.model_validate({"namespaceSelector": {}, "tiers": tiers})


def test_the_namespace_selector_is_required() -> None:
    with pytest.raises(ValidationError, match="namespaceSelector"):
        WorkspacePolicySpec.model_validate({"tiers": [3]})


def test_a_minimal_spec_grants_nothing_beyond_the_selector() -> None:
    spec = WorkspacePolicySpec.model_validate({"namespaceSelector": {}})
    assert (spec.tiers, spec.host_paths, spec.images, spec.docker_socket) == ((), (), (), False)
    assert spec.namespace_selector.match_labels == {}
    assert spec.namespace_selector.match_expressions == ()


@pytest.mark.parametrize(
    ("field", "items"),
    [
        pytest.param("hostPaths", [{"path": f"/srv/{i}"} for i in range(17)], id="hostPaths"),
        pytest.param("images", [{"prefix": f"ghcr.io/t{i}/"} for i in range(17)], id="images"),
    ],
)
def test_lists_are_bounded(field: str, items: list[dict[str, Any]]) -> None:
    with pytest.raises(ValidationError, match="at most 16"):
        WorkspacePolicySpec.model_validate({"namespaceSelector": {}, field: items})


def test_match_labels_values_are_bounded() -> None:
    with pytest.raises(ValidationError, match="63 characters"):
        WorkspacePolicySpec.model_validate({"namespaceSelector": {"matchLabels": {"env": "x" * 64}}})
    spec = WorkspacePolicySpec.model_validate({"namespaceSelector": {"matchLabels": {"env": "x" * 63}}})
    assert spec.namespace_selector.match_labels == {"env": "x" * 63}


def test_effective_grant_names_its_policy() -> None:
    with pytest.raises(ValidationError, match="policy"):
        EffectiveGrant.model_validate({"namespaceSelector": {}})
    grant = EffectiveGrant.model_validate({"namespaceSelector": {}, "policy": "p"})
    assert grant.policy == "p"


# --- a full sample --------------------------------------------------------------------------------------

SAMPLE = """
apiVersion: molecule.ai/v1alpha1
kind: WorkspacePolicy
metadata:
  name: research-privileged
spec:
  namespaceSelector:
    matchLabels:
      molecule.ai/tenant: research
    matchExpressions:
      - key: environment
        operator: In
        values: [staging, production]
      - key: molecule.ai/frozen
        operator: DoesNotExist
        values: []
  tiers: [3, 4]
  hostPaths:
    - path: /srv/agents
      access: read_write
    - path: /data/datasets
      access: read_only
  images:
    - prefix: ghcr.io/research/
      digestsOnly: false
    - prefix: registry.example.com:5000/vendor/
      digestsOnly: true
  dockerSocket: true
  requireNetworkIsolation: true
  allowedEgress: ["*.anthropic.com:443", "platform.internal:8080"]
  platformIdentity: true
"""


def test_a_full_sample_policy_round_trips() -> None:
    body = yaml.safe_load(SAMPLE)
    parsed = WorkspacePolicy.model_validate(body)
    assert parsed.spec.tiers == (3, 4)
    assert parsed.spec.host_paths[0] == HostPathGrant(path="/srv/agents", access="read_write")
    assert parsed.spec.images[1] == ImageGrant(prefix="registry.example.com:5000/vendor/", digests_only=True)
    assert parsed.spec.docker_socket is True
    assert parsed.spec.platform_identity is True
    assert parsed.model_dump(by_alias=True, exclude_none=True, mode="json") == body
    assert WorkspacePolicy.model_validate(parsed.model_dump(by_alias=True)) == parsed


def test_defaults_are_filled_in_on_the_way_out() -> None:
    body = {
        "apiVersion": "molecule.ai/v1alpha1",
        "kind": "WorkspacePolicy",
        "metadata": {"name": "p"},
        "spec": {
            "namespaceSelector": {},
            "hostPaths": [{"path": "/srv/a"}],
            "images": [{"prefix": "ghcr.io/a/"}],
        },
    }
    dumped = WorkspacePolicy.model_validate(body).model_dump(by_alias=True, exclude_none=True, mode="json")
    assert dumped["spec"] == {
        "namespaceSelector": {"matchLabels": {}, "matchExpressions": []},
        "tiers": [],
        "hostPaths": [{"path": "/srv/a", "access": "read_only"}],
        "images": [{"prefix": "ghcr.io/a/", "digestsOnly": False}],
        "dockerSocket": False,
        "requireNetworkIsolation": False,
        "allowedEgress": [],
        "platformIdentity": False,
    }


def test_an_effective_policy_round_trips() -> None:
    body = {
        "apiVersion": "molecule.ai/v1alpha1",
        "kind": "EffectiveWorkspacePolicy",
        "metadata": {"name": "cluster"},
        "spec": {
            "defaultImagePrefix": "ghcr.io/molecule-ai",
            "grants": [
                {
                    "namespaceSelector": {"matchLabels": {"env": "prod"}, "matchExpressions": []},
                    "tiers": [3],
                    "hostPaths": [],
                    "images": [],
                    "dockerSocket": False,
                    "requireNetworkIsolation": False,
                    "allowedEgress": [],
                    "platformIdentity": False,
                    "policy": "p",
                }
            ],
        },
    }
    parsed = EffectiveWorkspacePolicy.model_validate(body)
    assert parsed.model_dump(by_alias=True, mode="json", exclude_none=True) == body


def test_the_shipped_sample_policy_is_a_valid_workspace_policy() -> None:
    sample = yaml.safe_load((REPO / "deploy" / "samples" / "workspacepolicy.yaml").read_text())
    policy = WorkspacePolicy.model_validate(sample)
    assert policy.spec.tiers == (3,)
    assert [grant.path for grant in policy.spec.host_paths] == ["/srv/research", "/srv/datasets"]
    assert policy.spec.images[0].digests_only
