"""Kubernetes Events for what a person wants to see in `kubectl describe workspace`.

Posting is best effort: an Event that cannot be written is logged and dropped, never a reconcile error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from controller.api.workspace import API_VERSION, KIND
from controller.core.conditions import format_time
from controller.kube.client import ApiError, KubeClient, ObjectRef

log = logging.getLogger(__name__)


class _Object(Protocol):
    @property
    def uid(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...


class EventRecorder:
    def __init__(self, kube: KubeClient, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._kube = kube
        self._clock = clock
        self._pending: set[asyncio.Task[None]] = set()

    async def post(self, obj: _Object, type_: str, reason: str, message: str) -> None:
        ref = ObjectRef(API_VERSION, KIND, obj.namespace, obj.name, obj.uid)
        log.log(
            logging.WARNING if type_ == "Warning" else logging.INFO,
            "%s/%s: %s: %s",
            obj.namespace,
            obj.name,
            reason,
            message,
        )
        try:
            await self._kube.post_event(
                ref, type_=type_, reason=reason, message=message, now=format_time(self._clock())
            )
        except ApiError as exc:
            log.warning("could not post event %s for %s/%s: %s", reason, obj.namespace, obj.name, exc)

    def post_soon(self, obj: _Object, type_: str, reason: str, message: str) -> None:
        task = asyncio.get_running_loop().create_task(self.post(obj, type_, reason, message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
