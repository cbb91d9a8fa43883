"""kopf wiring: thin and declarative. Everything it calls lives in modules named for what they hold."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Any

import kopf

logger = logging.getLogger(__name__)

registry = kopf.OperatorRegistry()


@kopf.on.startup(registry=registry)
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.enabled = False  # Events are posted explicitly, not from log lines.
    settings.persistence.finalizer = "molecule.ai/workspace-cleanup"
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330


@kopf.on.login(registry=registry)
def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo | None:
    """In-cluster ServiceAccount first, then KUBECONFIG: no client library needed."""
    return kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(settings=settings)


def run(*, namespaces: Collection[str], liveness: str | None, metrics_port: int) -> int:
    asyncio.run(
        kopf.operator(
            registry=registry,
            standalone=True,
            clusterwide=not namespaces,
            namespaces=list(namespaces),
            liveness_endpoint=liveness,
        )
    )
    return 0
