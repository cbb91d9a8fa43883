"""Image presence, pulls and digests, against the two real registries of the session."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import urllib.request
import uuid
from typing import Any

import docker.errors
import pytest

from controller.core.image_refs import digest_for, split_reference
from controller.core.images import registry_auth_for
from controller.docker.adapter import DockerAdapter
from controller.port.errors import ImageNotFound, InUse, RegistryAuthFailed, RegistryUnavailable
from controller.port.values import RegistryCredentials
from tests.integration.stack import Registries
from tests.support.stack import free_port

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


def registry_digest(ref: str, basic_auth: tuple[str, str] | None = None) -> str:
    """What the registry itself says the ref's manifest digest is (independent of the engine)."""
    repository, tag = split_reference(ref)
    host, _, name = repository.partition("/")
    request = urllib.request.Request(f"http://{host}/v2/{name}/manifests/{tag}", method="HEAD")
    request.add_header("Accept", MANIFEST_TYPES)
    if basic_auth:
        token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        digest: str = response.headers["Docker-Content-Digest"]
        return digest


def forget_locally(docker_engine: Any, ref: str) -> str:
    """Untag `ref` in the engine (keeping the image) so only a real pull can bring it back; return its ID."""
    image_id: str = docker_engine.inspect_image(ref)["Id"]
    docker_engine.remove_image(ref, noprune=True)
    with pytest.raises(docker.errors.ImageNotFound):
        docker_engine.inspect_image(ref)
    return image_id


def credentials(registries: Registries, password: str | None = None) -> RegistryCredentials:
    return RegistryCredentials(
        serveraddress=registries.auth,
        username=registries.username,
        password=registries.password if password is None else password,
    )


def pull_secret(registry: str, entry: dict[str, str]) -> dict[str, Any]:
    """A parsed `.dockerconfigjson` document holding one entry for `registry`."""
    return {"auths": {registry: entry}}


async def test_pull_from_an_open_registry(
    adapter: DockerAdapter, registries: Registries, docker_engine: Any
) -> None:
    ref = registries.ref(registries.plain, "crewai")
    expected_id = forget_locally(docker_engine, ref)
    assert await adapter.inspect_image(ref) is None

    image_id = await adapter.pull_image(ref, platform="linux/amd64")

    assert image_id == expected_id
    image = await adapter.inspect_image(ref)
    assert image is not None
    assert image.id == expected_id
    digest = digest_for(ref, image.repo_digests)
    assert digest is not None
    assert digest == await asyncio.to_thread(registry_digest, ref)


async def test_pull_from_an_auth_registry_with_credentials(
    adapter: DockerAdapter, registries: Registries, docker_engine: Any
) -> None:
    ref = registries.ref(registries.auth, "hermes")
    expected_id = forget_locally(docker_engine, ref)

    image_id = await adapter.pull_image(ref, credentials=credentials(registries))

    assert image_id == expected_id
    image = await adapter.inspect_image(ref)
    assert image is not None
    creds = (registries.username, registries.password)
    assert digest_for(ref, image.repo_digests) == await asyncio.to_thread(registry_digest, ref, creds)


async def test_pull_with_config_file_style_auth(
    adapter: DockerAdapter, registries: Registries, docker_engine: Any
) -> None:
    ref = registries.ref(registries.auth, "codex")
    expected_id = forget_locally(docker_engine, ref)
    encoded = base64.b64encode(f"{registries.username}:{registries.password}".encode()).decode()
    decoded = registry_auth_for(ref, [pull_secret(registries.auth, {"auth": encoded})])
    assert decoded is not None

    assert await adapter.pull_image(ref, credentials=decoded) == expected_id


async def test_pull_from_an_auth_registry_without_credentials_is_an_auth_failure(
    adapter: DockerAdapter, registries: Registries, docker_engine: Any
) -> None:
    ref = registries.ref(registries.auth, "openclaw")
    forget_locally(docker_engine, ref)
    with pytest.raises(RegistryAuthFailed) as caught:
        await adapter.pull_image(ref)
    assert not caught.value.transient
    assert await adapter.inspect_image(ref) is None


async def test_pull_with_a_wrong_password_is_an_auth_failure(
    adapter: DockerAdapter, registries: Registries, docker_engine: Any
) -> None:
    ref = registries.ref(registries.auth, "autogen")
    forget_locally(docker_engine, ref)
    with pytest.raises(RegistryAuthFailed):
        await adapter.pull_image(ref, credentials=credentials(registries, password="wrong"))
    assert await adapter.inspect_image(ref) is None


async def test_undecodable_credentials_pull_anonymously_and_are_an_auth_failure(
    adapter: DockerAdapter, registries: Registries
) -> None:
    # The one decoder skips an entry it cannot read: the pull goes out without credentials and the
    # registry refuses it.
    ref = registries.ref(registries.auth, "autogen")
    decoded = registry_auth_for(ref, [pull_secret(registries.auth, {"auth": "not base64!"})])
    assert decoded is None
    with pytest.raises(RegistryAuthFailed):
        await adapter.pull_image(ref, credentials=decoded)


@pytest.mark.parametrize(
    ("runtime", "tag"),
    [("langgraph", "no-such-tag"), ("no-such-runtime", "latest")],
)
async def test_pull_of_a_missing_tag_or_repository_is_image_not_found(
    adapter: DockerAdapter, registries: Registries, runtime: str, tag: str
) -> None:
    with pytest.raises(ImageNotFound) as caught:
        await adapter.pull_image(registries.ref(registries.plain, runtime, tag))
    assert caught.value.resource == "image"


async def test_pull_from_a_registry_nobody_runs_is_transient(adapter: DockerAdapter) -> None:
    with pytest.raises(RegistryUnavailable) as caught:
        await adapter.pull_image(f"127.0.0.1:{free_port()}/molecule-ai/workspace-template-langgraph:latest")
    assert caught.value.transient
    # The daemon itself is fine.
    assert await adapter.ping()


async def test_registry_digest_is_the_registrys_own_without_a_pull(
    adapter: DockerAdapter, registries: Registries, docker_engine: Any
) -> None:
    ref = registries.ref(registries.plain, "gemini-cli")
    forget_locally(docker_engine, ref)
    assert await adapter.registry_digest(ref) == await asyncio.to_thread(registry_digest, ref)
    assert await adapter.inspect_image(ref) is None  # asked, not pulled

    private = registries.ref(registries.auth, "hermes")
    creds = (registries.username, registries.password)
    expected = await asyncio.to_thread(registry_digest, private, creds)
    assert await adapter.registry_digest(private, credentials(registries)) == expected


async def test_registry_digest_failures_are_classified_as_a_pulls_are(
    adapter: DockerAdapter, registries: Registries
) -> None:
    with pytest.raises(RegistryAuthFailed):
        await adapter.registry_digest(registries.ref(registries.auth, "hermes"))
    with pytest.raises(ImageNotFound):
        await adapter.registry_digest(registries.ref(registries.plain, "langgraph", "no-such-tag"))
    with pytest.raises(RegistryUnavailable):
        await adapter.registry_digest(
            f"127.0.0.1:{free_port()}/molecule-ai/workspace-template-langgraph:latest"
        )


async def test_inspect_image_of_an_unknown_image_is_none(adapter: DockerAdapter) -> None:
    assert await adapter.inspect_image("127.0.0.1:1/nobody/nothing:never") is None


async def test_image_gc_calls_list_images_see_what_uses_them_and_remove_one_under_two_tags(
    adapter: DockerAdapter, registries: Registries, docker_engine: Any
) -> None:
    """What the image GC asks of the engine: every image with its tags, the images of every container
    (a created one too), and a removal by tag that takes an image under two tags and refuses one in use."""
    base = registries.ref(registries.plain, "crewai")
    docker_engine.pull(base)
    repo = f"{registries.plain}/gc-it-{uuid.uuid4().hex[:8]}/workspace-template-x"

    def build(label: str) -> str:
        dockerfile = io.BytesIO(f"FROM {base}\nLABEL gc-it={label}-{repo}\n".encode())
        for _ in docker_engine.build(fileobj=dockerfile, tag=f"{repo}:{label}", rm=True, decode=True):
            pass
        image_id: str = docker_engine.inspect_image(f"{repo}:{label}")["Id"]
        return image_id

    unused, used = build("unused"), build("used")
    docker_engine.tag(unused, repo, "second-tag")
    holder = docker_engine.create_container(f"{repo}:used", name=f"gc-it-{uuid.uuid4().hex[:8]}")
    try:
        images = {image.id: image for image in await adapter.list_images()}
        assert set(images[unused].repo_tags) == {f"{repo}:unused", f"{repo}:second-tag"}
        in_use = await adapter.image_ids_in_use()
        assert used in in_use
        assert unused not in in_use

        await adapter.remove_image(images[unused])
        with pytest.raises(docker.errors.ImageNotFound):
            docker_engine.inspect_image(unused)
        with pytest.raises(InUse):
            await adapter.remove_image(images[used])
        assert docker_engine.inspect_image(used)["Id"] == used
        assert adapter.pulling() == frozenset()
    finally:
        docker_engine.remove_container(holder["Id"], force=True)
        with contextlib.suppress(docker.errors.APIError):
            docker_engine.remove_image(used, force=True)
