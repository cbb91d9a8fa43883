"""The largest Workspace the schema admits fits where Kubernetes keeps it: kubectl's client-side apply copies
it into an annotation, and all annotations together hold 256 KiB. Built from the schema's own bounds in
the costliest characters (tests/support/largest.py); if a bound grows, this fails."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from controller.api.workspace import INLINE_TEXT_BUDGET, MAX_WORKSPACE_NAME_LENGTH, Workspace, WorkspaceSpec
from tests.support.largest import (
    ANNOTATIONS_LIMIT,
    MAX_IMAGE_PULL_SECRETS,
    dns_subdomain,
    go_json,
    largest_workspace,
    last_applied_size,
    longest_image,
)

ROOM_FOR_THE_USERS_ANNOTATIONS = 8 * 1024


def largest() -> dict[str, Any]:
    return largest_workspace(
        name=dns_subdomain(MAX_WORKSPACE_NAME_LENGTH, "ws"),
        namespace="n" * 63,
        image=longest_image(),
        pull_secrets=[dns_subdomain(253, f"pull{i}") for i in range(MAX_IMAGE_PULL_SECRETS)],
        token_secret=dns_subdomain(253, "token"),
    )


def test_the_largest_workspace_is_valid_for_the_models() -> None:
    manifest = largest()
    workspace = Workspace.model_validate(manifest)
    assert sum(len(f.content) for f in workspace.spec.config.files) == INLINE_TEXT_BUDGET


def test_the_largest_workspace_fits_kubectls_annotation_with_room_to_spare() -> None:
    size = last_applied_size(largest())
    print(f"\nlargest Workspace: {size} bytes of last-applied-configuration (limit {ANNOTATIONS_LIMIT})")
    assert size <= ANNOTATIONS_LIMIT - ROOM_FOR_THE_USERS_ANNOTATIONS


def test_the_costly_characters_are_really_costly() -> None:
    assert go_json("<>&") == '"\\u003c\\u003e\\u0026"'
    assert len(go_json("<" * 10)) == 62


def test_one_character_more_inline_text_is_refused_with_the_way_out() -> None:
    spec: dict[str, Any] = json.loads(json.dumps(largest()["spec"]))
    spec["env"] = [*spec["env"][:-1], {"name": "ONE_MORE", "value": "x"}]
    with pytest.raises(ValidationError, match="put larger configuration in a ConfigMap"):
        WorkspaceSpec.model_validate(spec)
