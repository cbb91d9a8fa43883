"""The WorkspaceTemplates, as the watch last told, and each Workspace spec resolved against its template.

A template the watch has not brought yet is read once from the API (a Workspace may be reconciled before
the template watch has listed). A template created, changed or deleted wakes the Workspaces of its
namespace: the spec they resolve to changes, and their update strategy rolls the change out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from controller.api.workspace import TemplateStatus
from controller.core.causes import Cause, Reason
from controller.core.templates import Template, missing_message, resolve, template_name, template_of
from controller.kube.client import ApiError, KubeApi

log = logging.getLogger(__name__)

READ_TTL = 10.0
"""Seconds a template read from the API (or found missing) answers for the Workspaces that ask again."""


@dataclass(frozen=True)
class Resolved:
    """A Workspace spec with its template's fields in it, and which template generation that was."""

    spec: Mapping[str, Any]
    template: TemplateStatus | None


class TemplateStore:
    def __init__(
        self,
        kube: KubeApi,
        *,
        wake_namespace: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kube = kube
        self._wake_namespace = wake_namespace
        self._clock = clock
        self._templates: dict[tuple[str, str], Template | Cause] = {}
        self._read: dict[tuple[str, str], tuple[float, Template | Cause | None]] = {}
        """What a read from the API found (None: no such template), and when: the Workspaces of a template
        the watch has not brought share one read for READ_TTL seconds."""

    def template_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        self._read.pop(key, None)  # the watch speaks for it now
        if event_type == "DELETED":
            changed = self._templates.pop(key, None) is not None
        else:
            read = template_of(body)
            changed = self._templates.get(key) != read
            self._templates[key] = read
        if changed:
            self._wake_namespace(key[0])

    async def resolve(self, namespace: str, spec: Mapping[str, Any]) -> Resolved | Cause:
        """`spec` with its template's fields; `spec` itself when it names none. A Cause (Stalled) when the
        template is missing or unreadable, or pins a field the spec sets."""
        name = template_name(spec)
        if name is None:
            return Resolved(spec, None)
        found = await self._template(namespace, name)
        if found is None:
            return Cause(Reason.TEMPLATE_NOT_FOUND, missing_message(name, namespace))
        if isinstance(found, Cause):
            return found
        merged = resolve(spec, found)
        if isinstance(merged, Cause):
            return merged
        return Resolved(merged, found.status)

    async def _template(self, namespace: str, name: str) -> Template | Cause | None:
        key = (namespace, name)
        known = self._templates.get(key)
        if known is not None:
            return known
        now = self._clock()
        recent = self._read.get(key)
        if recent is not None and now - recent[0] < READ_TTL:
            return recent[1]
        found = await self._get(namespace, name)
        self._read = {k: v for k, v in self._read.items() if now - v[0] < READ_TTL}
        self._read[key] = (now, found)
        return found

    async def _get(self, namespace: str, name: str) -> Template | Cause | None:
        try:
            body = await self._kube.get_workspace_template(namespace, name)
        except ApiError as exc:
            if exc.status == HTTPStatus.FORBIDDEN:
                return Cause(
                    Reason.TEMPLATE_NOT_FOUND,
                    f"WorkspaceTemplate {name} may not be read by the controller (RBAC)",
                )
            if exc.not_found:  # the CRD is not installed
                return None
            raise
        if body is None:
            return None
        # Kept briefly, and only until the watch speaks: a template read here and deleted before the watch
        # listed it would otherwise be remembered for ever.
        return template_of(body)
