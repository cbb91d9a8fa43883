"""A stand-in for `KubeClient.request`: it records each call and answers with the next scripted reply
(an object, or an `ApiError` to raise). For tests of the adapters' wire format (paths, bodies)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.kube.client import ApiError


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Any
    content_type: str
    params: Mapping[str, str] | None = None


@dataclass
class ScriptedRequester:
    replies: list[Any] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
    ) -> Any:
        self.calls.append(Call(method, path, body, content_type, dict(params) if params else None))
        reply = self.replies.pop(0)
        if isinstance(reply, ApiError):
            raise reply
        return reply
