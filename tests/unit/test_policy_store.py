"""PolicyStore: the policies and namespace labels as the watches tell, and what it publishes.

Pinned: the start-up load (a missing CRD is "no policies"), a namespace read once through the API and
then from memory, every change that alters a grant waking every Workspace loop (and nothing else
waking them), the EffectiveWorkspacePolicy and the policies' status exactly as written, and that a
publication writes only what changed (again after the published object was deleted or edited by hand).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from controller.api.policy import MAX_MATCHED_NAMESPACES_LISTED, MAX_POLICIES, HostPathGrant, ImageGrant
from controller.api.workspace import API_VERSION
from controller.core.policy import DEFAULT_GRANT, Grant
from controller.kube.client import ApiError
from controller.reconcile import policies as policies_module
from controller.reconcile.policies import EFFECTIVE_POLICY_NAME, PolicyStore
from tests.support.fake_kube import FakeKube

PREFIX = "ghcr.io/molecule-ai"
PROD = {"env": "prod"}


@dataclass
class CountingKube(FakeKube):
    """FakeKube that counts what the store asks, and can lack the WorkspacePolicy CRD."""

    crd_installed: bool = True
    list_error: int | None = None
    namespace_reads: list[str] = field(default_factory=list)
    applied: list[dict[str, Any]] = field(default_factory=list)
    patched: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def list_workspace_policies(self) -> list[dict[str, Any]]:
        if not self.crd_installed:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if self.list_error is not None:
            raise ApiError(self.list_error, "Forbidden", "cannot list workspacepolicies")
        return await super().list_workspace_policies()

    async def get_namespace(self, name: str) -> dict[str, Any] | None:
        self.namespace_reads.append(name)
        return await super().get_namespace(name)

    async def apply_effective_policy(self, body: Mapping[str, Any]) -> None:
        self.applied.append(dict(body))
        await super().apply_effective_policy(body)

    async def patch_workspace_policy_status(self, name: str, status: Mapping[str, Any]) -> None:
        self.patched.append((name, dict(status)))
        await super().patch_workspace_policy_status(name, status)


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def make_store(kube: FakeKube, prefix: str = PREFIX) -> tuple[PolicyStore, Wakes]:
    wakes = Wakes()
    return PolicyStore(kube, default_image_prefix=prefix, wake_all=wakes), wakes


def policy(name: str, spec: Mapping[str, Any], generation: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "WorkspacePolicy",
        "metadata": {"name": name, "generation": generation},
        "spec": dict(spec),
        **extra,
    }


def namespace(name: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels is not None:
        meta["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


TIER3_PROD = {"namespaceSelector": {"matchLabels": PROD}, "tiers": [3]}
TIER4_PROD = {"namespaceSelector": {"matchLabels": PROD}, "tiers": [4], "dockerSocket": True}
TIER3 = frozenset({1, 2, 3})


# --- load --------------------------------------------------------------------------------------------


def test_load_reads_every_policy() -> None:
    async def scenario() -> None:
        kube = CountingKube(policies={"p3": policy("p3", TIER3_PROD)}, namespaces={"team-a": PROD})
        store, wakes = make_store(kube)
        await store.load()
        assert await store.grant("team-a") == Grant(tiers=TIER3, policies=("p3",))
        assert wakes.count == 0  # nothing runs yet at load time

    asyncio.run(scenario())


def test_load_without_the_crd_is_no_policy() -> None:
    async def scenario() -> None:
        kube = CountingKube(crd_installed=False, namespaces={"team-a": PROD})
        store, _ = make_store(kube)
        await store.load()
        assert await store.grant("team-a") == DEFAULT_GRANT
        assert store.effective()["spec"] == {"defaultImagePrefix": PREFIX, "grants": []}

    asyncio.run(scenario())


def test_load_under_rbac_that_forbids_listing_policies_fails_closed_to_the_default() -> None:
    """A controller run under a namespaced Role may not read the cluster's policies: it grants nothing
    beyond the default (fail closed) rather than refuse to start."""

    async def scenario() -> None:
        kube = CountingKube(list_error=403, namespaces={"team-a": PROD})
        store, _ = make_store(kube)
        await store.load()
        assert await store.grant("team-a") == DEFAULT_GRANT

    asyncio.run(scenario())


def test_load_fails_on_any_other_api_error() -> None:
    async def scenario() -> None:
        store, _ = make_store(CountingKube(list_error=500))
        with pytest.raises(ApiError) as caught:
            await store.load()
        assert caught.value.status == 500

    asyncio.run(scenario())


# --- grant: a namespace not seen yet is read once ---------------------------------------------------


def test_an_unknown_namespace_is_read_once_then_from_memory() -> None:
    async def scenario() -> None:
        kube = CountingKube(policies={"p3": policy("p3", TIER3_PROD)}, namespaces={"team-a": PROD})
        store, wakes = make_store(kube)
        await store.load()
        assert (await store.grant("team-a")).tiers == TIER3
        assert (await store.grant("team-a")).tiers == TIER3
        assert kube.namespace_reads == ["team-a"]
        # Relabelled without a watch event: the store still answers from memory.
        kube.namespaces["team-a"] = {}
        assert (await store.grant("team-a")).tiers == TIER3
        assert kube.namespace_reads == ["team-a"]
        assert wakes.count == 0

    asyncio.run(scenario())


def test_a_namespace_the_watch_delivered_is_never_read() -> None:
    async def scenario() -> None:
        kube = CountingKube(policies={"p3": policy("p3", TIER3_PROD)})
        store, _ = make_store(kube)
        await store.load()
        store.namespace_event(None, namespace("team-a", PROD))
        assert (await store.grant("team-a")).tiers == TIER3
        assert kube.namespace_reads == []

    asyncio.run(scenario())


def test_a_namespace_that_does_not_exist_gets_the_default_and_is_read_once() -> None:
    async def scenario() -> None:
        kube = CountingKube(policies={"p3": policy("p3", TIER3_PROD)})
        store, _ = make_store(kube)
        await store.load()
        assert await store.grant("ghost") == DEFAULT_GRANT
        assert await store.grant("ghost") == DEFAULT_GRANT
        assert kube.namespace_reads == ["ghost"]

    asyncio.run(scenario())


def test_a_namespace_without_labels_gets_the_default() -> None:
    async def scenario() -> None:
        kube = CountingKube(policies={"p3": policy("p3", TIER3_PROD)})
        store, _ = make_store(kube)
        await store.load()
        store.namespace_event(None, namespace("bare"))
        assert await store.grant("bare") == DEFAULT_GRANT

    asyncio.run(scenario())


# --- namespace events -------------------------------------------------------------------------------


def test_namespace_label_changes_change_the_grant_and_wake_every_loop() -> None:
    async def scenario() -> None:
        kube = CountingKube(policies={"p3": policy("p3", TIER3_PROD)})
        store, wakes = make_store(kube)
        await store.load()

        store.namespace_event(None, namespace("team-a", {"env": "dev"}))
        assert wakes.count == 1  # a namespace seen for the first time
        assert await store.grant("team-a") == DEFAULT_GRANT

        store.namespace_event("MODIFIED", namespace("team-a", {"env": "dev"}))
        assert wakes.count == 1  # the same labels again (an annotation changed): nothing to do

        store.namespace_event("MODIFIED", namespace("team-a", PROD))
        assert wakes.count == 2
        assert await store.grant("team-a") == Grant(tiers=TIER3, policies=("p3",))

        store.namespace_event("MODIFIED", namespace("team-a", {}))
        assert wakes.count == 3
        assert await store.grant("team-a") == DEFAULT_GRANT
        assert kube.namespace_reads == []

    asyncio.run(scenario())


def test_a_deleted_namespace_is_forgotten_and_read_again() -> None:
    async def scenario() -> None:
        kube = CountingKube(policies={"p3": policy("p3", TIER3_PROD)})
        store, wakes = make_store(kube)
        await store.load()
        store.namespace_event(None, namespace("team-a", PROD))
        store.namespace_event("DELETED", namespace("team-a", PROD))
        assert wakes.count == 2
        store.namespace_event("DELETED", namespace("team-a", PROD))
        assert wakes.count == 2  # already forgotten
        assert await store.grant("team-a") == DEFAULT_GRANT
        assert kube.namespace_reads == ["team-a"]

    asyncio.run(scenario())


# --- policy events ----------------------------------------------------------------------------------


def test_policy_add_modify_delete_change_the_grant_and_wake() -> None:
    async def scenario() -> None:
        store, wakes = make_store(CountingKube())
        await store.load()
        store.namespace_event(None, namespace("team-a", PROD))
        assert wakes.count == 1

        store.policy_event("ADDED", policy("p", TIER3_PROD))
        assert wakes.count == 2
        assert await store.grant("team-a") == Grant(tiers=TIER3, policies=("p",))

        store.policy_event("MODIFIED", policy("p", TIER4_PROD, generation=2))
        assert wakes.count == 3
        assert await store.grant("team-a") == Grant(
            tiers=frozenset({1, 2, 4}), docker_socket=True, policies=("p",)
        )

        store.policy_event("DELETED", policy("p", TIER4_PROD, generation=2))
        assert wakes.count == 4
        assert await store.grant("team-a") == DEFAULT_GRANT

        store.policy_event("DELETED", policy("p", TIER4_PROD, generation=2))
        assert wakes.count == 4  # not known any more

    asyncio.run(scenario())


def test_the_initial_listing_event_adds_a_policy() -> None:
    async def scenario() -> None:
        store, wakes = make_store(CountingKube())
        store.namespace_event(None, namespace("team-a", PROD))
        store.policy_event(None, policy("p", TIER3_PROD))
        assert wakes.count == 2
        assert (await store.grant("team-a")).policies == ("p",)

    asyncio.run(scenario())


def test_an_unchanged_redelivery_does_not_wake() -> None:
    async def scenario() -> None:
        store, wakes = make_store(CountingKube())
        store.policy_event("ADDED", policy("p", TIER3_PROD))
        assert wakes.count == 1
        store.policy_event("MODIFIED", policy("p", TIER3_PROD))
        # Its status written (by this very store): same generation, same spec.
        status = {"observedGeneration": 1, "matchedNamespaces": [], "matchedNamespaceCount": 0}
        store.policy_event("MODIFIED", policy("p", TIER3_PROD, status=status))
        assert wakes.count == 1

    asyncio.run(scenario())


def test_several_policies_unite_and_one_deleted_leaves_the_others() -> None:
    async def scenario() -> None:
        store, _ = make_store(CountingKube())
        store.namespace_event(None, namespace("team-a", PROD))
        paths = {"namespaceSelector": {}, "hostPaths": [{"path": "/srv/a", "access": "read_write"}]}
        store.policy_event("ADDED", policy("z-paths", paths))
        store.policy_event("ADDED", policy("a-tier3", TIER3_PROD))
        assert await store.grant("team-a") == Grant(
            tiers=TIER3,
            host_paths=(HostPathGrant(path="/srv/a", access="read_write"),),
            policies=("a-tier3", "z-paths"),
        )
        store.policy_event("DELETED", policy("a-tier3", TIER3_PROD))
        assert await store.grant("team-a") == Grant(
            host_paths=(HostPathGrant(path="/srv/a", access="read_write"),), policies=("z-paths",)
        )

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"namespaceSelector": {}, "tiers": [5]}, id="tier 5"),
        pytest.param({"namespaceSelector": {}, "tiers": [3, 3]}, id="repeated tier"),
        pytest.param(
            {"namespaceSelector": {}, "hostPaths": [{"path": "/etc/ssl"}]}, id="host path under /etc"
        ),
        pytest.param(
            {"namespaceSelector": {}, "images": [{"prefix": "ghcr.io/team"}]}, id="prefix without /"
        ),
        pytest.param({"tiers": [3]}, id="no namespaceSelector"),
        pytest.param(
            {"namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "In"}]}, "tiers": [3]},
            id="In without values",
        ),
    ],
)
def test_an_invalid_policy_grants_nothing(spec: dict[str, Any]) -> None:
    async def scenario() -> None:
        store, wakes = make_store(CountingKube())
        store.namespace_event(None, namespace("team-a", PROD))
        store.policy_event("ADDED", policy("bad", spec))
        assert wakes.count == 1  # only the namespace
        assert await store.grant("team-a") == DEFAULT_GRANT
        assert store.effective()["spec"]["grants"] == []

    asyncio.run(scenario())


def test_a_policy_turned_invalid_withdraws_its_grant_and_wakes() -> None:
    async def scenario() -> None:
        store, wakes = make_store(CountingKube())
        store.namespace_event(None, namespace("team-a", PROD))
        store.policy_event("ADDED", policy("p", TIER3_PROD))
        assert (await store.grant("team-a")).tiers == TIER3
        store.policy_event("MODIFIED", policy("p", {"namespaceSelector": {}, "tiers": [9]}, generation=2))
        assert wakes.count == 3
        assert await store.grant("team-a") == DEFAULT_GRANT
        assert store.statuses() == {}

    asyncio.run(scenario())


# --- effective() and statuses() ----------------------------------------------------------------------


def test_effective_lists_every_policy_sorted_in_camel_case() -> None:
    store, _ = make_store(CountingKube(), prefix=PREFIX + "/")
    store.policy_event(
        "ADDED",
        policy(
            "zeta",
            {
                "namespaceSelector": {
                    "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]
                },
                "tiers": [4, 3],
                "hostPaths": [{"path": "/srv/a", "access": "read_write"}, {"path": "/data"}],
                "images": [{"prefix": "docker.io/library/", "digestsOnly": True}],
                "dockerSocket": True,
                "requireNetworkIsolation": False,
                "allowedEgress": [],
                "platformIdentity": False,
            },
        ),
    )
    store.policy_event(
        "ADDED", policy("alpha", {"namespaceSelector": {}, "images": [{"prefix": "ghcr.io/a/"}]})
    )
    assert store.default_image_prefix == PREFIX
    assert store.effective() == {
        "apiVersion": API_VERSION,
        "kind": "EffectiveWorkspacePolicy",
        "metadata": {"name": EFFECTIVE_POLICY_NAME},
        "spec": {
            "defaultImagePrefix": PREFIX,
            "grants": [
                {
                    "namespaceSelector": {"matchLabels": {}, "matchExpressions": []},
                    "tiers": [],
                    "hostPaths": [],
                    "images": [{"prefix": "ghcr.io/a/", "digestsOnly": False}],
                    "dockerSocket": False,
                    "requireNetworkIsolation": False,
                    "allowedEgress": [],
                    "platformIdentity": False,
                    "policy": "alpha",
                },
                {
                    "namespaceSelector": {
                        "matchLabels": {},
                        "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}],
                    },
                    "tiers": [4, 3],
                    "hostPaths": [
                        {"path": "/srv/a", "access": "read_write"},
                        {"path": "/data", "access": "read_only"},
                    ],
                    "images": [{"prefix": "docker.io/library/", "digestsOnly": True}],
                    "dockerSocket": True,
                    "requireNetworkIsolation": False,
                    "allowedEgress": [],
                    "platformIdentity": False,
                    "policy": "zeta",
                },
            ],
        },
    }


def test_statuses_list_the_matched_namespaces_sorted() -> None:
    store, _ = make_store(CountingKube())
    store.policy_event("ADDED", policy("prod", TIER3_PROD, generation=3))
    store.policy_event("ADDED", policy("all", {"namespaceSelector": {}}, generation=1))
    store.policy_event("ADDED", policy("none", {"namespaceSelector": {"matchLabels": {"x": "y"}}}))
    for name, labels in (("team-c", PROD), ("team-a", PROD), ("team-b", {"env": "dev"})):
        store.namespace_event(None, namespace(name, labels))
    assert store.statuses() == {
        "prod": {
            "observedGeneration": 3,
            "matchedNamespaces": ["team-a", "team-c"],
            "matchedNamespaceCount": 2,
            "admitted": True,
        },
        "all": {
            "observedGeneration": 1,
            "matchedNamespaces": ["team-a", "team-b", "team-c"],
            "matchedNamespaceCount": 3,
            "admitted": True,
        },
        "none": {
            "observedGeneration": 1,
            "matchedNamespaces": [],
            "matchedNamespaceCount": 0,
            "admitted": True,
        },
    }


def test_statuses_cap_the_list_and_count_every_match() -> None:
    store, _ = make_store(CountingKube())
    store.policy_event("ADDED", policy("all", {"namespaceSelector": {}}))
    total = MAX_MATCHED_NAMESPACES_LISTED + 5
    names = [f"ns-{i:03d}" for i in range(total)]
    for name in reversed(names):
        store.namespace_event(None, namespace(name, {}))
    status = store.statuses()["all"]
    assert status["matchedNamespaces"] == names[:MAX_MATCHED_NAMESPACES_LISTED]
    assert status["matchedNamespaceCount"] == total


# --- publish -----------------------------------------------------------------------------------------


def two_policies() -> CountingKube:
    return CountingKube(
        policies={
            "p3": policy("p3", TIER3_PROD, generation=2),
            "images": policy("images", {"namespaceSelector": {}, "images": [{"prefix": "ghcr.io/a/"}]}),
        }
    )


async def loaded(kube: CountingKube) -> PolicyStore:
    store, _ = make_store(kube)
    await store.load()
    store.namespace_event(None, namespace("team-a", PROD))
    store.namespace_event(None, namespace("team-b", {}))
    return store


def test_publish_applies_the_effective_policy_and_every_status() -> None:
    async def scenario() -> None:
        kube = two_policies()
        store = await loaded(kube)
        await store.publish()
        assert kube.applied == [store.effective()]
        assert kube.effective == store.effective()
        assert sorted(name for name, _ in kube.patched) == ["images", "p3"]
        assert kube.policies["p3"]["status"] == {
            "observedGeneration": 2,
            "matchedNamespaces": ["team-a"],
            "matchedNamespaceCount": 1,
            "admitted": True,
        }
        assert kube.policies["images"]["status"]["matchedNamespaces"] == ["team-a", "team-b"]

    asyncio.run(scenario())


def test_a_second_publish_with_nothing_changed_writes_nothing() -> None:
    async def scenario() -> None:
        kube = two_policies()
        store = await loaded(kube)
        await store.publish()
        applied, patched = len(kube.applied), len(kube.patched)
        await store.publish()
        assert (len(kube.applied), len(kube.patched)) == (applied, patched)

    asyncio.run(scenario())


def test_publish_writes_only_what_changed() -> None:
    async def scenario() -> None:
        kube = two_policies()
        store = await loaded(kube)
        await store.publish()
        kube.applied.clear()
        kube.patched.clear()

        # A namespace relabelled: the statuses of the policies selecting it, not the effective policy.
        store.namespace_event("MODIFIED", namespace("team-b", PROD))
        await store.publish()
        assert kube.applied == []
        assert kube.patched == [
            (
                "p3",
                {
                    "observedGeneration": 2,
                    "matchedNamespaces": ["team-a", "team-b"],
                    "matchedNamespaceCount": 2,
                    "admitted": True,
                },
            )
        ]
        kube.patched.clear()

        # A policy changed: the effective policy and that policy's status (its generation).
        changed = policy("p3", {**TIER3_PROD, "tiers": [3, 4]}, generation=3)
        kube.policies["p3"]["spec"] = changed["spec"]
        store.policy_event("MODIFIED", changed)
        await store.publish()
        assert kube.applied == [store.effective()]
        assert [name for name, _ in kube.patched] == ["p3"]
        assert kube.policies["p3"]["status"]["observedGeneration"] == 3

    asyncio.run(scenario())


def test_a_policy_deleted_before_its_status_is_written_is_skipped() -> None:
    async def scenario() -> None:
        kube = two_policies()
        store = await loaded(kube)
        del kube.policies["p3"]  # deleted; the watch has not told yet
        await store.publish()
        assert kube.effective == store.effective()
        assert "status" in kube.policies["images"]
        assert sorted(name for name, _ in kube.patched) == ["images", "p3"]

        # The watch tells: the grant goes, nothing is written for it any more.
        store.policy_event("DELETED", policy("p3", TIER3_PROD, generation=2))
        kube.patched.clear()
        await store.publish()
        assert kube.patched == []
        assert [grant["policy"] for grant in kube.effective["spec"]["grants"]] == ["images"]

    asyncio.run(scenario())


def test_a_failed_status_write_other_than_not_found_is_raised() -> None:
    async def scenario() -> None:
        kube = two_policies()
        store = await loaded(kube)
        kube.unreachable = True
        with pytest.raises(ApiError):
            await store.publish()
        kube.unreachable = False
        await store.publish()  # everything not written yet is written now
        assert kube.effective == store.effective()
        assert all("status" in body for body in kube.policies.values())

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("event_type", "edit", "republished"),
    [
        pytest.param("DELETED", False, True, id="deleted"),
        pytest.param("MODIFIED", True, True, id="edited by someone else"),
        pytest.param("MODIFIED", False, False, id="our own write echoed"),
        pytest.param(None, False, False, id="listed as published"),
    ],
)
def test_effective_event(event_type: str | None, edit: bool, republished: bool) -> None:
    async def scenario() -> None:
        kube = two_policies()
        store = await loaded(kube)
        await store.publish()
        kube.applied.clear()
        body: dict[str, Any] = {
            **store.effective(),
            "metadata": {"name": EFFECTIVE_POLICY_NAME, "resourceVersion": "42", "generation": 1},
        }
        if edit:
            body["spec"] = {**body["spec"], "grants": []}
        store.effective_event(event_type, body)
        await store.publish()
        assert kube.applied == ([store.effective()] if republished else [])

    asyncio.run(scenario())


def test_an_event_about_another_effective_object_is_ignored() -> None:
    async def scenario() -> None:
        kube = two_policies()
        store = await loaded(kube)
        await store.publish()
        kube.applied.clear()
        store.effective_event("DELETED", {"metadata": {"name": "other"}, "spec": {}})
        await store.publish()
        assert kube.applied == []

    asyncio.run(scenario())


def test_grant_reflects_image_grants_from_the_store() -> None:
    async def scenario() -> None:
        kube = two_policies()
        store = await loaded(kube)
        grant = await store.grant("team-b")
        assert grant == Grant(images=(ImageGrant(prefix="ghcr.io/a/"),), policies=("images",))

    asyncio.run(scenario())


def test_beyond_the_admission_limit_the_first_policies_by_name_are_published_and_the_rest_say_so() -> None:
    """Admission reads at most MAX_POLICIES grants; the publisher neither dies nor guesses: it publishes
    the first by name, marks the others `admitted: false` in their status and logs which are left out."""
    kube = FakeKube()
    store = PolicyStore(kube, default_image_prefix="ghcr.io/molecule-ai", wake_all=lambda: None)
    for i in range(MAX_POLICIES + 2):
        name = f"p{i:03d}"
        kube.policies[name] = {"metadata": {"name": name, "generation": 1}, "spec": {"namespaceSelector": {}}}
        store.policy_event("ADDED", kube.policies[name])

    asyncio.run(store.publish())

    assert kube.effective is not None
    published = [grant["policy"] for grant in kube.effective["spec"]["grants"]]
    assert published == [f"p{i:03d}" for i in range(MAX_POLICIES)]
    assert kube.policies[f"p{MAX_POLICIES - 1:03d}"]["status"]["admitted"] is True
    assert kube.policies[f"p{MAX_POLICIES:03d}"]["status"]["admitted"] is False
    assert kube.policies[f"p{MAX_POLICIES + 1:03d}"]["status"]["admitted"] is False


@dataclass
class ForbiddingKube(CountingKube):
    """Namespaced RBAC: cluster-scoped reads and the effective policy are forbidden."""

    async def get_namespace(self, name: str) -> dict[str, Any] | None:
        self.namespace_reads.append(name)
        raise ApiError(403, "Forbidden", f'namespaces "{name}" is forbidden')

    async def apply_effective_policy(self, body: Mapping[str, Any]) -> None:
        self.applied.append(dict(body))
        raise ApiError(403, "Forbidden", "effectiveworkspacepolicies is forbidden")


def test_a_namespace_that_may_not_be_read_has_no_labels_and_only_select_all_policies_apply() -> None:
    async def scenario() -> None:
        kube = ForbiddingKube(namespaces={"team-a": PROD})
        store, _ = make_store(kube)
        store.policy_event(
            "ADDED", policy("prod-only", {"namespaceSelector": {"matchLabels": PROD}, "tiers": [3]})
        )
        store.policy_event("ADDED", policy("everyone", {"namespaceSelector": {}, "tiers": [4]}))
        grant = await store.grant("team-a")
        assert grant.tiers == frozenset({1, 2, 4})
        assert grant.policies == ("everyone",)
        await store.grant("team-a")
        assert kube.namespace_reads == ["team-a"]  # read (and refused) once, then remembered

    asyncio.run(scenario())


def test_a_publication_the_rbac_forbids_is_not_retried_until_something_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(policies_module, "PUBLISH_DELAY", 0.001)
    monkeypatch.setattr(policies_module, "RETRY_DELAY", 0.001)

    async def scenario() -> None:
        kube = ForbiddingKube()
        store, _ = make_store(kube)
        applied = asyncio.Event()
        refuse = kube.apply_effective_policy

        async def signalling(body: Mapping[str, Any]) -> None:
            applied.set()
            await refuse(body)

        kube.apply_effective_policy = signalling  # type: ignore[method-assign]
        await store.load()
        publisher = asyncio.create_task(store.publish_forever())
        try:
            await asyncio.wait_for(applied.wait(), 5)
            applied.clear()
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(applied.wait(), 0.1)  # refused once, not retried in a loop
            assert len(kube.applied) == 1
            store.policy_event("ADDED", policy("new", {"namespaceSelector": {}, "tiers": [3]}))
            await asyncio.wait_for(applied.wait(), 5)  # a change tries again
            assert len(kube.applied) == 2
        finally:
            publisher.cancel()

    asyncio.run(scenario())


def test_a_namespace_label_change_wakes_only_that_namespaces_loops_when_it_can() -> None:
    async def scenario() -> None:
        kube = CountingKube(policies={"p3": policy("p3", TIER3_PROD)})
        every, woken = Wakes(), list[str]()
        store = PolicyStore(kube, default_image_prefix=PREFIX, wake_all=every, wake_namespace=woken.append)
        await store.load()

        store.namespace_event(None, namespace("team-a", {"env": "dev"}))
        store.namespace_event("MODIFIED", namespace("team-a", PROD))
        store.namespace_event("MODIFIED", namespace("team-b", PROD))
        assert woken == ["team-a", "team-a", "team-b"]
        assert every.count == 0  # a namespace's labels judge its own Workspaces, no one else's

    asyncio.run(scenario())
