"""Kubernetes Events for what a person wants to see in `kubectl describe workspace`.

Posting is best effort: an Event that cannot be written is logged and dropped, never a reconcile error.
Every Event is logged too, at WARNING for Warnings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from controller.core.conditions import format_time
from controller.core.identity import WorkspaceRef
from controller.kube.client import ApiError, KubeApi

log = logging.getLogger(__name__)


class EventRecorder:
    def __init__(self, kube: KubeApi, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._kube = kube
        self._clock = clock
        self._pending: set[asyncio.Task[None]] = set()

    async def post(self, workspace: WorkspaceRef, type_: str, reason: str, message: str) -> None:
        log.log(
            logging.WARNING if type_ == "Warning" else logging.INFO,
            "%s: %s: %s",
            workspace,
            reason,
            message,
        )
        try:
            await self._kube.post_event(
                workspace, type_=type_, reason=reason, message=message, now=format_time(self._clock())
            )
        except ApiError as exc:
            log.warning("could not post event %s for %s: %s", reason, workspace, exc)

    def post_soon(self, workspace: WorkspaceRef, type_: str, reason: str, message: str) -> None:
        """Post in the background (the caller does not wait for the API server)."""
        task = asyncio.get_running_loop().create_task(self.post(workspace, type_, reason, message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
