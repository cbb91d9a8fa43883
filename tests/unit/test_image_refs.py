"""Image references, parsed once: as the pull API, RepoDigests and docker config files spell them."""

from __future__ import annotations

import pytest

from controller.core.image_refs import (
    digest_for,
    image_tag,
    normalise_registry,
    normalize_repository,
    registry_host,
    split_reference,
)

DIGEST = "sha256:6a38dee97bae5cef9cf6272bf726229bbffd4eeb6e5582a31aeb6e28d91e36da"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (
            "ghcr.io/molecule-ai/workspace-template-langgraph:latest",
            ("ghcr.io/molecule-ai/workspace-template-langgraph", "latest"),
        ),
        (
            "ghcr.io/molecule-ai/workspace-template-langgraph",
            ("ghcr.io/molecule-ai/workspace-template-langgraph", "latest"),
        ),
        ("localhost:5000/x", ("localhost:5000/x", "latest")),
        ("localhost:5000/x:0.8.2", ("localhost:5000/x", "0.8.2")),
        (f"localhost:5000/x@{DIGEST}", ("localhost:5000/x", DIGEST)),
        (f"localhost:5000/x:latest@{DIGEST}", ("localhost:5000/x", DIGEST)),
        ("busybox", ("busybox", "latest")),
    ],
)
def test_split_reference(ref: str, expected: tuple[str, str]) -> None:
    assert split_reference(ref) == expected


@pytest.mark.parametrize(
    ("repository", "short"),
    [
        ("docker.io/library/busybox", "busybox"),
        ("index.docker.io/library/busybox", "busybox"),
        ("docker.io/someone/tool", "someone/tool"),
        ("library/busybox", "library/busybox"),
        ("ghcr.io/library/x", "ghcr.io/library/x"),
    ],
)
def test_normalize_repository(repository: str, short: str) -> None:
    assert normalize_repository(repository) == short


def test_digest_is_taken_from_the_refs_own_repository() -> None:
    # One image pushed to many repositories lists one RepoDigest per repository (observed).
    repo_digests = [
        "127.0.0.1:5111/molecule-ai/workspace-template-autogen@sha256:" + "1" * 64,
        f"127.0.0.1:5391/molecule-ai/workspace-template-langgraph@{DIGEST}",
        "127.0.0.1:5392/molecule-ai/workspace-template-langgraph@sha256:" + "2" * 64,
    ]
    assert (
        digest_for("127.0.0.1:5391/molecule-ai/workspace-template-langgraph:latest", repo_digests) == DIGEST
    )
    assert digest_for("127.0.0.1:5391/molecule-ai/workspace-template-hermes:latest", repo_digests) is None


def test_digest_for_docker_hub_short_names() -> None:
    assert digest_for("docker.io/library/busybox:1.36", [f"busybox@{DIGEST}"]) == DIGEST


def test_digest_for_ignores_junk() -> None:
    assert digest_for("x:latest", [None, 5, "x", "x@"]) is None


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("alpine", "docker.io"),
        ("library/alpine:3", "docker.io"),
        ("molecule/agent:1", "docker.io"),
        ("ghcr.io/molecule-ai/x:latest", "ghcr.io"),
        ("localhost:5000/x", "localhost:5000"),
        ("localhost/x", "localhost"),
        ("Registry.Example.com:443/team/app", "registry.example.com:443"),
        ("index.docker.io/library/alpine", "docker.io"),
        ("workspace-template:hermes", "docker.io"),
    ],
)
def test_registry_host_of_an_image_reference(image: str, registry: str) -> None:
    assert registry_host(image) == registry


@pytest.mark.parametrize(
    ("ref", "tag"),
    [
        ("busybox", ""),
        ("busybox:1.36", "1.36"),
        ("localhost:5000/x", ""),
        ("localhost:5000/x:0.8.2", "0.8.2"),
        (f"localhost:5000/x@{DIGEST}", ""),
        (f"localhost:5000/x:latest@{DIGEST}", "latest"),
    ],
)
def test_image_tag_ignores_a_registry_port_and_the_digest(ref: str, tag: str) -> None:
    assert image_tag(ref) == tag


@pytest.mark.parametrize(
    ("key", "host"),
    [
        ("ghcr.io", "ghcr.io"),
        ("https://index.docker.io/v1/", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("https://Registry.Example.com:5000/v2/", "registry.example.com:5000"),
        ("http://localhost:5000", "localhost:5000"),
        (" quay.io/ ", "quay.io"),
    ],
)
def test_registry_keys_of_docker_config_files_are_read_as_hosts(key: str, host: str) -> None:
    assert normalise_registry(key) == host
