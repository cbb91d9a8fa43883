"""The Docker side of the controller: the `ContainerRuntime` port implemented for the Docker Engine, and
the only code in the project that talks to Docker.

- `connect`: the one way to get a runtime for a daemon (below).
- `adapter`: `DockerAdapter`, the async facade implementing the port.
- `create_args`, `archive`: the port's `ContainerSpec` and `FileTree` in the SDK's shapes.
- `parse`: Docker's JSON into the port's values; `classify`: the SDK's failures into the port's errors.
- `event_stream`: the container event stream, followed in a thread and delivered to asyncio.
- `executor`: how blocking SDK calls run off the event loop, one client per worker thread.
"""

from __future__ import annotations

from controller.docker.adapter import DockerAdapter
from controller.docker.executor import TlsFiles
from controller.port.runtime import ContainerRuntime

__all__ = ["DockerAdapter", "TlsFiles", "connect"]


def connect(
    endpoint: str | None = None, *, timeout: float, concurrency: int, tls: TlsFiles | None = None
) -> ContainerRuntime:
    """The runtime of the Docker daemon at `endpoint` (`unix://...`, `tcp://...`, `ssh://...`).

    None takes the daemon from the environment, as the docker CLI does (DOCKER_HOST, DOCKER_TLS_VERIFY,
    DOCKER_CERT_PATH, else the default socket). Nothing is contacted until the first call.
    """
    return DockerAdapter(base_url=endpoint, timeout=timeout, concurrency=concurrency, tls=tls)
