"""What a namespace may use, and whether a Workspace asks for more: controller/core/policy.py.

Pinned: label selector semantics (matchLabels and each operator, missing keys, `{}` selecting everything),
the union of every matching policy on top of the default (tiers 1-2, no host path, registry images), the
decision table of `policy_denial` (order of the checks: tier, then host path, then image), the exact
messages, and that deploy/admission/'s CEL messageExpressions build the very same messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.api.policy import (
    EFFECTIVE_KIND,
    GrantedAccess,
    HostPathGrant,
    ImageGrant,
    WorkspacePolicySpec,
)
from controller.api.selectors import LabelSelector
from controller.api.workspace import API_VERSION, WorkspaceSpec
from controller.core import policy as core_policy
from controller.core.causes import Cause, Reason
from controller.core.policy import (
    DEFAULT_GRANT,
    Grant,
    grant_for,
    host_path_granted,
    host_path_message,
    image_granted,
    image_message,
    platform_identity_message,
    policy_denial,
    tier_message,
)
from controller.core.selectors import selector_matches
from controller.reconcile.policies import EFFECTIVE_POLICY_NAME

NS = "team-a"
PREFIX = "ghcr.io/molecule-ai"
ADMISSION = Path(__file__).resolve().parents[2] / "deploy" / "admission" / "workspace-policy.yaml"
DIGEST = "@sha256:" + "a" * 64


def selector(body: Mapping[str, Any]) -> LabelSelector:
    return LabelSelector.model_validate(body)


def spec_of(body: Mapping[str, Any]) -> WorkspacePolicySpec:
    return WorkspacePolicySpec.model_validate(body)


def workspace(**body: Any) -> WorkspaceSpec:
    return WorkspaceSpec.model_validate(body)


def paths(*grants: tuple[str, GrantedAccess]) -> Grant:
    return Grant(host_paths=tuple(HostPathGrant(path=path, access=access) for path, access in grants))


def images(*grants: tuple[str, bool]) -> Grant:
    return Grant(images=tuple(ImageGrant(prefix=prefix, digests_only=digests) for prefix, digests in grants))


# --- selector_matches ------------------------------------------------------------------------------


def expression(key: str, operator: str, *values: str) -> dict[str, Any]:
    return {"matchExpressions": [{"key": key, "operator": operator, "values": list(values)}]}


SELECTORS: list[tuple[str, dict[str, Any], dict[str, str], bool]] = [
    ("empty selector, no labels", {}, {}, True),
    ("empty selector, some labels", {}, {"env": "prod"}, True),
    ("matchLabels equal", {"matchLabels": {"env": "prod"}}, {"env": "prod", "team": "a"}, True),
    ("matchLabels other value", {"matchLabels": {"env": "prod"}}, {"env": "dev"}, False),
    ("matchLabels key missing", {"matchLabels": {"env": "prod"}}, {"team": "a"}, False),
    ("matchLabels empty value, key missing", {"matchLabels": {"env": ""}}, {}, False),
    ("matchLabels empty value, present empty", {"matchLabels": {"env": ""}}, {"env": ""}, True),
    ("matchLabels all must hold", {"matchLabels": {"env": "prod", "team": "a"}}, {"env": "prod"}, False),
    (
        "matchLabels all hold",
        {"matchLabels": {"env": "prod", "team": "a"}},
        {"env": "prod", "team": "a"},
        True,
    ),
    ("In, value listed", expression("env", "In", "prod", "staging"), {"env": "staging"}, True),
    ("In, value not listed", expression("env", "In", "prod", "staging"), {"env": "dev"}, False),
    ("In, key missing", expression("env", "In", "prod"), {}, False),
    ("NotIn, value listed", expression("env", "NotIn", "dev"), {"env": "dev"}, False),
    ("NotIn, value not listed", expression("env", "NotIn", "dev"), {"env": "prod"}, True),
    ("NotIn, key missing", expression("env", "NotIn", "dev"), {}, True),
    ("Exists, present", expression("env", "Exists"), {"env": ""}, True),
    ("Exists, missing", expression("env", "Exists"), {"team": "a"}, False),
    ("DoesNotExist, present", expression("env", "DoesNotExist"), {"env": "prod"}, False),
    ("DoesNotExist, missing", expression("env", "DoesNotExist"), {"team": "a"}, True),
    (
        "matchLabels and expressions both hold",
        {"matchLabels": {"team": "a"}, **expression("env", "In", "prod")},
        {"team": "a", "env": "prod"},
        True,
    ),
    (
        "matchLabels holds, expression does not",
        {"matchLabels": {"team": "a"}, **expression("env", "In", "prod")},
        {"team": "a", "env": "dev"},
        False,
    ),
    (
        "expression holds, matchLabels does not",
        {"matchLabels": {"team": "a"}, **expression("env", "In", "prod")},
        {"team": "b", "env": "prod"},
        False,
    ),
    (
        "every expression must hold",
        {
            "matchExpressions": [
                {"key": "env", "operator": "Exists"},
                {"key": "frozen", "operator": "DoesNotExist"},
            ]
        },
        {"env": "prod", "frozen": "true"},
        False,
    ),
]


@pytest.mark.parametrize(
    ("body", "labels", "matches"), [pytest.param(*row[1:], id=row[0]) for row in SELECTORS]
)
def test_selector_matches(body: dict[str, Any], labels: dict[str, str], matches: bool) -> None:
    assert selector_matches(selector(body), labels) is matches


# --- grant_for -------------------------------------------------------------------------------------

PROD = {"env": "prod"}
TIER3 = spec_of(
    {
        "namespaceSelector": {"matchLabels": PROD},
        "tiers": [3],
        "hostPaths": [{"path": "/srv/agents", "access": "read_write"}],
        "images": [{"prefix": "ghcr.io/team-a/"}],
    }
)
TIER4 = spec_of(
    {
        "namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "Exists"}]},
        "tiers": [4, 3],
        "hostPaths": [{"path": "/data/shared"}],
        "images": [{"prefix": "docker.io/library/", "digestsOnly": True}],
        "dockerSocket": True,
    }
)
ELSEWHERE = spec_of(
    {
        "namespaceSelector": {"matchLabels": {"env": "dev"}},
        "tiers": [4],
        "hostPaths": [{"path": "/home/dev"}],
        "images": [{"prefix": "quay.io/dev/"}],
        "dockerSocket": True,
    }
)


def test_no_policy_grants_the_default_only() -> None:
    assert grant_for([], PROD) == DEFAULT_GRANT
    assert Grant(frozenset({1, 2}), (), (), False, ()) == DEFAULT_GRANT


def test_only_non_matching_policies_grant_the_default_only() -> None:
    assert grant_for([("dev", ELSEWHERE)], PROD) == DEFAULT_GRANT


def test_matching_policies_unite_and_the_others_are_ignored() -> None:
    # Given in reverse order: the contributions come in policy-name order.
    grant = grant_for([("z-tier4", TIER4), ("dev", ELSEWHERE), ("a-tier3", TIER3)], PROD)
    assert grant == Grant(
        tiers=frozenset({1, 2, 3, 4}),
        host_paths=(
            HostPathGrant(path="/srv/agents", access="read_write"),
            HostPathGrant(path="/data/shared", access="read_only"),
        ),
        images=(
            ImageGrant(prefix="ghcr.io/team-a/"),
            ImageGrant(prefix="docker.io/library/", digests_only=True),
        ),
        docker_socket=True,
        policies=("a-tier3", "z-tier4"),
    )


def test_docker_socket_is_granted_only_by_a_policy_saying_so() -> None:
    assert grant_for([("a-tier3", TIER3)], PROD).docker_socket is False
    assert grant_for([("a-tier3", TIER3), ("z-tier4", TIER4)], PROD).docker_socket is True
    # A later policy without it does not take it back.
    assert grant_for([("a-tier4", TIER4), ("z-tier3", TIER3)], PROD).docker_socket is True


def test_the_empty_selector_grants_every_namespace() -> None:
    everyone = spec_of({"namespaceSelector": {}, "tiers": [3]})
    assert grant_for([("all", everyone)], {}).tiers == {1, 2, 3}
    assert grant_for([("all", everyone)], PROD).policies == ("all",)


# --- policy_denial -----------------------------------------------------------------------------------


def tier_denied(tier: int) -> Cause:
    return Cause(Reason.POLICY_DENIED, tier_message(tier, NS))


def path_denied(path: str, access: str) -> Cause:
    return Cause(Reason.POLICY_DENIED, host_path_message(path, access, NS))


def image_denied(image: str) -> Cause:
    return Cause(Reason.POLICY_DENIED, image_message(image, NS, PREFIX))


def mount(path: str, access: str = "read_only") -> dict[str, Any]:
    return {"hostPath": path, "access": access}


TIERS_3_4 = Grant(tiers=frozenset({1, 2, 3, 4}))
SRV_A_RO = paths(("/srv/a", "read_only"))
SRV_A_RW = paths(("/srv/a", "read_write"))
SRV_RW = paths(("/srv", "read_write"))
TEAM_IMAGES = images(("ghcr.io/team-a/", False))
PINNED_IMAGES = images(("docker.io/library/", True))
EVERYTHING = Grant(
    tiers=frozenset({1, 2, 3, 4}),
    host_paths=(HostPathGrant(path="/srv/a", access="read_write"),),
    images=(ImageGrant(prefix="ghcr.io/team-a/"),),
)

DENIALS: list[tuple[str, dict[str, Any], Grant, Cause | None]] = [
    # -- tiers --------------------------------------------------------------------------------------------
    ("default spec, default grant", {}, DEFAULT_GRANT, None),
    ("tier 1 everywhere", {"tier": 1}, DEFAULT_GRANT, None),
    ("tier 2 everywhere", {"tier": 2}, DEFAULT_GRANT, None),
    ("tier 3 without grant", {"tier": 3}, DEFAULT_GRANT, tier_denied(3)),
    ("tier 4 without grant", {"tier": 4}, DEFAULT_GRANT, tier_denied(4)),
    ("tier 3 granted", {"tier": 3}, TIERS_3_4, None),
    ("tier 4 granted", {"tier": 4}, TIERS_3_4, None),
    ("tier 4 with only tier 3 granted", {"tier": 4}, Grant(tiers=frozenset({1, 2, 3})), tier_denied(4)),
    # -- host paths ---------------------------------------------------------------------------------------
    (
        "host path without grant",
        {"workspace": mount("/srv/a")},
        DEFAULT_GRANT,
        path_denied("/srv/a", "read_only"),
    ),
    ("host path equal to the grant", {"workspace": mount("/srv/a")}, SRV_A_RO, None),
    ("host path below the grant", {"workspace": mount("/srv/a/b/c")}, SRV_A_RO, None),
    (
        "sibling sharing a string prefix is not covered",
        {"workspace": mount("/srv/ab")},
        SRV_A_RO,
        path_denied("/srv/ab", "read_only"),
    ),
    (
        "parent of the grant is not covered",
        {"workspace": mount("/srv")},
        SRV_A_RO,
        path_denied("/srv", "read_only"),
    ),
    (
        "read_write under a read_only grant",
        {"workspace": mount("/srv/a/x", "read_write")},
        SRV_A_RO,
        path_denied("/srv/a/x", "read_write"),
    ),
    ("read_write under a read_write grant", {"workspace": mount("/srv/a/x", "read_write")}, SRV_A_RW, None),
    ("read_only under a read_write grant", {"workspace": mount("/srv/a/x", "read_only")}, SRV_A_RW, None),
    (
        "read_write allowed when any grant covering it allows it",
        {"workspace": mount("/srv/a/x", "read_write")},
        paths(("/srv/a", "read_only"), ("/srv/a/x", "read_write")),
        None,
    ),
    ("access none ignores the host path", {"workspace": mount("/srv/a", "none")}, DEFAULT_GRANT, None),
    ("a grant covers its whole tree", {"workspace": mount("/srv/a/b/c", "read_write")}, SRV_RW, None),
    # -- images -------------------------------------------------------------------------------------------
    ("no image: the runtime's, under the default prefix", {"image": None}, DEFAULT_GRANT, None),
    ("image under the default prefix", {"image": f"{PREFIX}/custom:1"}, DEFAULT_GRANT, None),
    ("image deep under the default prefix", {"image": f"{PREFIX}/a/b:1"}, DEFAULT_GRANT, None),
    (
        "image sharing a string prefix with the default prefix",
        {"image": "ghcr.io/molecule-ai-evil/x:1"},
        DEFAULT_GRANT,
        image_denied("ghcr.io/molecule-ai-evil/x:1"),
    ),
    (
        "image elsewhere without grant",
        {"image": "ghcr.io/team-a/x:1"},
        DEFAULT_GRANT,
        image_denied("ghcr.io/team-a/x:1"),
    ),
    ("docker hub short name without grant", {"image": "busybox"}, DEFAULT_GRANT, image_denied("busybox")),
    ("image from a granted prefix", {"image": "ghcr.io/team-a/x:1"}, TEAM_IMAGES, None),
    ("image from a granted prefix, nested", {"image": "ghcr.io/team-a/x/y" + DIGEST}, TEAM_IMAGES, None),
    (
        "image of a sibling repository namespace",
        {"image": "ghcr.io/team-abc/x:1"},
        TEAM_IMAGES,
        image_denied("ghcr.io/team-abc/x:1"),
    ),
    ("digestsOnly with a digest", {"image": "docker.io/library/nginx" + DIGEST}, PINNED_IMAGES, None),
    (
        "digestsOnly with a tag and a digest",
        {"image": "docker.io/library/nginx:1" + DIGEST},
        PINNED_IMAGES,
        None,
    ),
    (
        "digestsOnly with a tag only",
        {"image": "docker.io/library/nginx:1"},
        PINNED_IMAGES,
        image_denied("docker.io/library/nginx:1"),
    ),
    (
        "digestsOnly with neither tag nor digest",
        {"image": "docker.io/library/nginx"},
        PINNED_IMAGES,
        image_denied("docker.io/library/nginx"),
    ),
    (
        "the same prefix once pinned, once not: the unpinned grant wins",
        {"image": "docker.io/library/nginx:1"},
        images(("docker.io/library/", True), ("docker.io/library/", False)),
        None,
    ),
    # -- the order of the checks --------------------------------------------------------------------------
    (
        "tier before host path and image",
        {"tier": 3, "workspace": mount("/srv/a"), "image": "busybox"},
        DEFAULT_GRANT,
        tier_denied(3),
    ),
    (
        "host path before image",
        {"tier": 3, "workspace": mount("/srv/b"), "image": "busybox"},
        TIERS_3_4,
        path_denied("/srv/b", "read_only"),
    ),
    (
        "image last",
        {"tier": 3, "workspace": mount("/srv/a", "read_write"), "image": "busybox"},
        EVERYTHING,
        image_denied("busybox"),
    ),
    (
        "everything granted",
        {"tier": 3, "workspace": mount("/srv/a", "read_write"), "image": "ghcr.io/team-a/x:1"},
        EVERYTHING,
        None,
    ),
]


@pytest.mark.parametrize(
    ("body", "grant", "expected"), [pytest.param(*row[1:], id=row[0]) for row in DENIALS]
)
def test_policy_denial(body: dict[str, Any], grant: Grant, expected: Cause | None) -> None:
    assert policy_denial(workspace(**body), NS, grant, PREFIX) == expected


@pytest.mark.parametrize("prefix", [PREFIX, PREFIX + "/"], ids=["without slash", "with slash"])
def test_default_prefix_with_or_without_trailing_slash(prefix: str) -> None:
    assert image_granted(f"{PREFIX}/x:1", DEFAULT_GRANT, prefix)
    assert not image_granted("ghcr.io/molecule-aix/x:1", DEFAULT_GRANT, prefix)
    assert not image_granted(PREFIX, DEFAULT_GRANT, prefix)
    denial = policy_denial(workspace(image="busybox"), NS, DEFAULT_GRANT, prefix)
    assert denial == image_denied("busybox")


def test_host_path_granted_compares_whole_components() -> None:
    grant = paths(("/srv/a", "read_write"))
    assert host_path_granted("/srv/a", "read_write", grant)
    assert host_path_granted("/srv/a/b", "read_only", grant)
    assert not host_path_granted("/srv/ab", "read_only", grant)
    assert not host_path_granted("/srv", "read_only", grant)
    assert not host_path_granted("/srv/a", "read_only", DEFAULT_GRANT)


def test_a_policy_grant_end_to_end_from_the_policy_spec() -> None:
    """grant_for feeds policy_denial: the labels decide."""
    policies = [("a-tier3", TIER3)]
    asked = workspace(tier=3, workspace=mount("/srv/agents/alice", "read_write"), image="ghcr.io/team-a/a:1")
    assert policy_denial(asked, NS, grant_for(policies, PROD), PREFIX) is None
    assert policy_denial(asked, NS, grant_for(policies, {"env": "dev"}), PREFIX) == tier_denied(3)


# --- the messages ------------------------------------------------------------------------------------


def test_tier_message() -> None:
    assert tier_message(3, "team-a") == (
        "tier 3 is not granted to namespace team-a: tiers 1 and 2 are allowed everywhere; a cluster admin "
        "grants it with a WorkspacePolicy whose namespaceSelector matches this namespace (spec.tiers: [3])"
    )


def test_host_path_message() -> None:
    assert host_path_message("/srv/a", "read_write", "team-a") == (
        "workspace.hostPath /srv/a (read_write) is not granted to namespace team-a: no host path is allowed "
        "by default; a cluster admin grants it with a WorkspacePolicy whose namespaceSelector matches this "
        "namespace (spec.hostPaths: [{path: /srv/a, access: read_write}])"
    )


def test_image_message() -> None:
    expected = (
        "image busybox is not granted to namespace team-a: images under ghcr.io/molecule-ai/ are allowed "
        "everywhere; a cluster admin grants it with a WorkspacePolicy whose namespaceSelector matches this "
        "namespace (spec.images: [{prefix: <registry>/<path>/}], with digestsOnly for references pinned by "
        "@sha256 digest)"
    )
    assert image_message("busybox", "team-a", "ghcr.io/molecule-ai") == expected
    assert image_message("busybox", "team-a", "ghcr.io/molecule-ai/") == expected


# --- the admission policy says the same ----------------------------------------------------------------


def admission_documents() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(ADMISSION.read_text(encoding="utf-8")) if doc]


def admission_policy() -> dict[str, Any]:
    (found,) = [d for d in admission_documents() if d["kind"] == "ValidatingAdmissionPolicy"]
    return found


def validations() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = admission_policy()["spec"]["validations"]
    return found


def cel_variable(name: str) -> str:
    (found,) = [v["expression"] for v in admission_policy()["spec"]["variables"] if v["name"] == name]
    assert isinstance(found, str)
    return found


def cel_string_literal(text: str) -> str:
    """A single-quoted CEL string literal without escapes (what the messageExpressions use)."""
    text = text.strip()
    assert len(text) >= 2, text
    assert text[0] == text[-1] == "'", text
    body = text[1:-1]
    assert "'" not in body, text
    assert "\\" not in body, text
    return body


def concatenation_terms(expression: str) -> list[str]:
    """`'a' + x + 'b'` as its terms, splitting on '+' outside string literals."""
    terms: list[str] = []
    current: list[str] = []
    quoted = False
    for char in expression:
        if char == "'":
            quoted = not quoted
        if char == "+" and not quoted:
            terms.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    assert not quoted, expression
    terms.append("".join(current).strip())
    return terms


def evaluate_message(expression: str, values: Mapping[str, str]) -> str:
    """Evaluate a messageExpression that concatenates literals and the variables in `values`."""
    out: list[str] = []
    for term in concatenation_terms(expression):
        if term.startswith("'"):
            out.append(cel_string_literal(term))
        else:
            assert term in values, f"unexpected term {term!r} in {expression!r}"
            out.append(values[term])
    return "".join(out)


def cel_values(**values: str) -> dict[str, str]:
    return {
        "namespaceObject.metadata.name": NS,
        "variables.how": cel_string_literal(cel_variable("how")),
        "params.spec.defaultImagePrefix": PREFIX,
        **values,
    }


def test_the_how_variable_is_the_python_how() -> None:
    assert cel_string_literal(cel_variable("how")) == core_policy._HOW


def test_the_cel_messages_come_in_the_order_of_the_python_checks() -> None:
    expressions = [v["messageExpression"] for v in validations()]
    assert len(expressions) == 4
    assert expressions[0].startswith("'tier '")
    assert expressions[1].startswith("'workspace.hostPath '")
    assert expressions[2].startswith("'image '")
    assert expressions[3].startswith("'spec.workspaceID and spec.adopt are not granted")
    assert all(v["reason"] == "Forbidden" for v in validations())


def test_the_tier_message_expression_builds_tier_message() -> None:
    expression = validations()[0]["messageExpression"]
    for fragment in ("' is not granted to namespace '", "': tiers 1 and 2 are allowed everywhere; '"):
        assert fragment in expression
    assert "variables.how" in expression
    assert "' (spec.tiers: ['" in expression
    for tier in (3, 4):
        built = evaluate_message(expression, cel_values(**{"string(variables.tier)": str(tier)}))
        assert built == tier_message(tier, NS)


def test_the_host_path_message_expression_builds_host_path_message() -> None:
    expression = validations()[1]["messageExpression"]
    for fragment in (
        "') is not granted to namespace '",
        "': no host path is allowed by default; '",
        "' (spec.hostPaths: [{path: '",
        "', access: '",
        "'}])'",
    ):
        assert fragment in expression
    for path, access in (("/srv/a", "read_only"), ("/home/u/x", "read_write")):
        built = evaluate_message(
            expression, cel_values(**{"variables.hostPath": path, "variables.access": access})
        )
        assert built == host_path_message(path, access, NS)


def test_the_image_message_expression_builds_image_message() -> None:
    expression = validations()[2]["messageExpression"]
    suffix = (
        " (spec.images: [{prefix: <registry>/<path>/}], "
        "with digestsOnly for references pinned by @sha256 digest)"
    )
    for fragment in ("' is not granted to namespace '", "': images under '", "'/ are allowed everywhere; '"):
        assert fragment in expression
    assert f"'{suffix}'" in expression
    assert image_message("x", NS, PREFIX).endswith(suffix)
    for image in ("busybox", "docker.io/library/nginx:1"):
        built = evaluate_message(expression, cel_values(**{"variables.image": image}))
        assert built == image_message(image, NS, PREFIX)


def test_the_platform_identity_message_expression_builds_its_message() -> None:
    expression = validations()[3]["messageExpression"]
    assert evaluate_message(expression, cel_values()) == platform_identity_message(NS)
    rule = validations()[3]["expression"]
    assert "has(object.spec.workspaceID)" in rule
    assert "object.spec.adopt" in rule
    assert "g.platformIdentity" in rule


def test_the_platforms_ids_and_adoption_need_a_grant() -> None:
    granted = grant_for([("platform", spec_of({"namespaceSelector": {}, "platformIdentity": True}))], {})
    for spec in ({"workspaceID": "0b6c7a9e-2d41"}, {"adopt": True}):
        denial = policy_denial(WorkspaceSpec.model_validate(spec), NS, DEFAULT_GRANT, PREFIX)
        assert denial is not None
        assert denial.message == platform_identity_message(NS)
        assert policy_denial(WorkspaceSpec.model_validate(spec), NS, granted, PREFIX) is None
    assert granted.platform_identity


def test_the_cel_rules_use_the_python_markers() -> None:
    """The image rule knows a pinned reference by the same marker, and a prefix is taken with its '/'."""
    image_rule = validations()[2]["expression"]
    assert f"'{core_policy.DIGEST_MARKER}'" in image_rule
    assert "params.spec.defaultImagePrefix + '/'" in image_rule
    tier_rule = validations()[0]["expression"]
    assert "variables.tier <= 2" in tier_rule


def test_the_admission_policy_reads_the_published_effective_policy_and_fails_closed() -> None:
    policy = admission_policy()
    assert policy["spec"]["paramKind"] == {"apiVersion": API_VERSION, "kind": EFFECTIVE_KIND}
    assert policy["spec"]["failurePolicy"] == "Fail"
    (binding,) = [d for d in admission_documents() if d["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["paramRef"] == {"name": EFFECTIVE_POLICY_NAME, "parameterNotFoundAction": "Deny"}
    assert binding["spec"]["validationActions"] == ["Deny"]
