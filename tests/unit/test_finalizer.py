"""The controller's finalizer as JSON patches: the exact operations, and what they do to a Workspace.

Each builder is pinned twice: the operations themselves (what the API server is sent), and their effect
when applied the way `FakeKube` applies RFC 6902, including the refusal (422) a stale patch meets.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from controller.kube.client import ApiError
from controller.kube.finalizer import (
    FINALIZER,
    add_finalizer,
    drop_kopf_annotations,
    has_finalizer,
    remove_finalizer,
)
from tests.support.fake_kube import FakeKube, apply_json_patch_operation

NS, NAME = "ns", "w"

LAST_HANDLED = "kopf.zalando.org/last-handled-configuration"
PROGRESS = "kopf.zalando.org/workspace-reconcile"


def workspace(
    *,
    resource_version: str = "7",
    finalizers: list[str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"uid": "u", "namespace": NS, "name": NAME, "resourceVersion": resource_version}
    if finalizers is not None:
        meta["finalizers"] = finalizers
    if annotations is not None:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {"runtime": "langgraph"}}


def applied(document: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """The document once every operation applied (on a copy: the original is left as it was)."""
    result = copy.deepcopy(document)
    for op in ops:
        apply_json_patch_operation(result, op)
    return result


# -- add_finalizer -----------------------------------------------------------------------------------


@pytest.mark.parametrize("finalizers", [None, []], ids=["no-list", "empty-list"])
def test_adding_to_a_workspace_without_finalizers_creates_the_list(finalizers: list[str] | None) -> None:
    body = workspace(finalizers=finalizers)

    ops = add_finalizer(body)

    assert ops == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]},
    ]
    assert applied(body, ops)["metadata"]["finalizers"] == [FINALIZER]


def test_adding_next_to_other_finalizers_appends_and_keeps_theirs() -> None:
    body = workspace(finalizers=["example.com/a", "example.com/b"])

    ops = add_finalizer(body)

    assert ops == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER},
    ]
    assert applied(body, ops)["metadata"]["finalizers"] == ["example.com/a", "example.com/b", FINALIZER]


def test_the_resource_version_is_tested_before_anything_changes() -> None:
    body = workspace(finalizers=["example.com/a"], annotations={LAST_HANDLED: "{}"})

    ops = add_finalizer(body)

    assert ops[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "7"}
    assert [op["op"] for op in ops[1:]] == ["add", "remove"]


def test_kopf_annotations_are_removed_with_slashes_escaped_and_the_others_kept() -> None:
    annotations = {
        LAST_HANDLED: '{"spec": {}}',
        PROGRESS: '{"started": "2024-01-01T00:00:00Z"}',
        "kopf.zalando.org/odd~key": "x",
        "example.com/keep": "yes",
        "not-kopf.zalando.org/keep": "yes",
    }
    body = workspace(annotations=annotations)

    ops = add_finalizer(body)

    assert ops == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]},
        {"op": "remove", "path": "/metadata/annotations/kopf.zalando.org~1last-handled-configuration"},
        {"op": "remove", "path": "/metadata/annotations/kopf.zalando.org~1workspace-reconcile"},
        # RFC 6901: '~' becomes '~0' before '/' becomes '~1', so neither is mistaken for the other.
        {"op": "remove", "path": "/metadata/annotations/kopf.zalando.org~1odd~0key"},
    ]
    result = applied(body, ops)
    assert result["metadata"]["annotations"] == {
        "example.com/keep": "yes",
        "not-kopf.zalando.org/keep": "yes",
    }
    assert result["metadata"]["finalizers"] == [FINALIZER]
    assert body["metadata"]["annotations"] == annotations  # the builder did not touch the body


def test_drop_kopf_annotations_alone_is_empty_without_kopf_annotations() -> None:
    assert drop_kopf_annotations(workspace()) == []
    assert drop_kopf_annotations(workspace(annotations={"example.com/keep": "yes"})) == []
    assert drop_kopf_annotations({"metadata": {"annotations": None}}) == []
    assert drop_kopf_annotations({}) == []
    assert drop_kopf_annotations(workspace(annotations={LAST_HANDLED: "{}"})) == [
        {"op": "remove", "path": "/metadata/annotations/kopf.zalando.org~1last-handled-configuration"}
    ]


def test_an_add_built_from_a_stale_version_is_refused_and_changes_nothing() -> None:
    seen = workspace(resource_version="7", annotations={LAST_HANDLED: "{}"})
    stored = workspace(resource_version="8", annotations={LAST_HANDLED: "{}", "example.com/new": "1"})
    ops = add_finalizer(seen)

    with pytest.raises(ApiError) as refused:
        applied(stored, ops)
    assert refused.value.status == 422

    kube = FakeKube(objects={(NS, NAME): copy.deepcopy(stored)})
    with pytest.raises(ApiError) as refused_by_server:
        asyncio.run(kube.patch_workspace(NS, NAME, ops))
    assert refused_by_server.value.status == 422
    assert kube.objects[(NS, NAME)] == stored  # all or nothing: the concurrent edit is not undone


def test_an_add_built_from_the_current_version_is_applied_by_the_server() -> None:
    body = workspace(resource_version="7", finalizers=["example.com/a"], annotations={LAST_HANDLED: "{}"})
    kube = FakeKube(objects={(NS, NAME): copy.deepcopy(body)})

    updated = asyncio.run(kube.patch_workspace(NS, NAME, add_finalizer(body)))

    assert updated["metadata"]["finalizers"] == ["example.com/a", FINALIZER]
    assert updated["metadata"]["annotations"] == {}
    assert updated["metadata"]["resourceVersion"] == "8"
    assert has_finalizer(updated)


# -- remove_finalizer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finalizers", "index", "left"),
    [
        ([FINALIZER], 0, []),
        (["example.com/a", FINALIZER], 1, ["example.com/a"]),
        (["example.com/a", FINALIZER, "example.com/b"], 1, ["example.com/a", "example.com/b"]),
        ([FINALIZER, "example.com/b"], 0, ["example.com/b"]),
    ],
)
def test_removing_tests_and_removes_at_the_current_index(
    finalizers: list[str], index: int, left: list[str]
) -> None:
    body = workspace(finalizers=finalizers)

    ops = remove_finalizer(body)

    assert ops == [
        {"op": "test", "path": f"/metadata/finalizers/{index}", "value": FINALIZER},
        {"op": "remove", "path": f"/metadata/finalizers/{index}"},
    ]
    assert applied(body, ops)["metadata"]["finalizers"] == left


def test_a_removal_built_before_the_list_changed_is_refused() -> None:
    seen = workspace(finalizers=["example.com/a", FINALIZER])
    # Another controller put its finalizer first meanwhile: index 1 is no longer ours.
    stored = workspace(finalizers=["example.com/first", "example.com/a", FINALIZER])

    with pytest.raises(ApiError) as refused:
        applied(stored, remove_finalizer(seen))
    assert refused.value.status == 422
    assert applied(stored, remove_finalizer(stored))["metadata"]["finalizers"] == [
        "example.com/first",
        "example.com/a",
    ]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"metadata": None},
        workspace(),
        workspace(finalizers=[]),
        workspace(finalizers=["example.com/a"]),
        workspace(finalizers=[FINALIZER + "-not"]),
    ],
    ids=["no-metadata", "null-metadata", "no-list", "empty-list", "others-only", "similar-name"],
)
def test_nothing_to_remove_is_an_empty_patch(body: dict[str, Any]) -> None:
    assert remove_finalizer(body) == []
    assert has_finalizer(body) is False


def test_has_finalizer() -> None:
    assert has_finalizer(workspace(finalizers=[FINALIZER])) is True
    assert has_finalizer(workspace(finalizers=["example.com/a", FINALIZER])) is True
    assert has_finalizer(workspace(finalizers=["example.com/a"])) is False
    assert has_finalizer({"metadata": {"finalizers": None}}) is False
    assert has_finalizer(workspace()) is False
