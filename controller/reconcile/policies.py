"""The WorkspacePolicies and the namespaces' labels, as the watches last told, and what follows from them.

The store answers a reconcile's question "what may this namespace use?" from memory (a namespace not
seen yet is read once from the API). When a policy changes, or a namespace's labels do, it wakes every
Workspace loop, so a grant given or withdrawn takes effect without waiting for the resync, and it
republishes what admission reads and what `kubectl get workspacepolicies` shows: the
EffectiveWorkspacePolicy (every grant at once) and each policy's matched namespaces.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from pydantic import ValidationError

from controller.api.policy import (
    EFFECTIVE_KIND,
    MAX_MATCHED_NAMESPACES_LISTED,
    MAX_POLICIES,
    EffectiveGrant,
    EffectiveWorkspacePolicySpec,
    WorkspacePolicySpec,
    WorkspacePolicyStatus,
)
from controller.api.workspace import API_VERSION
from controller.core.policy import Grant, grant_for
from controller.core.selectors import selector_matches
from controller.kube.client import ApiError, KubeApi

log = logging.getLogger(__name__)

EFFECTIVE_POLICY_NAME = "cluster"
"""The one EffectiveWorkspacePolicy the admission policy's binding names (deploy/admission/)."""
PUBLISH_DELAY = 0.5
"""Changes arriving together (a list at start-up, an `apply -f` of several policies) publish once."""
RETRY_DELAY = 5.0


class PolicyStore:
    def __init__(
        self,
        kube: KubeApi,
        *,
        default_image_prefix: str,
        wake_all: Callable[[], None],
        wake_namespace: Callable[[str], None] | None = None,
    ) -> None:
        self._kube = kube
        self._default_image_prefix = default_image_prefix.rstrip("/")
        self._wake_all = wake_all
        self._wake_namespace = wake_namespace
        self._policies: dict[str, tuple[int, WorkspacePolicySpec]] = {}  # name -> (generation, spec)
        self._namespaces: dict[str, dict[str, str]] = {}
        self._published: dict[str, Mapping[str, Any]] = {}  # policy name -> status last written
        self._published_effective: Mapping[str, Any] | None = None
        self._changed = asyncio.Event()

    # -- what the watches say ------------------------------------------------------------------------

    async def load(self) -> None:
        """Read every policy once before the first reconcile (the watch keeps the store current after)."""
        try:
            items = await self._kube.list_workspace_policies()
        except ApiError as exc:
            if exc.not_found:
                log.warning(
                    "the WorkspacePolicy CRD is not installed: every namespace gets the default grant"
                )
            elif exc.status == HTTPStatus.FORBIDDEN:
                # Fail closed: a controller that may not read the grants gives none beyond the default.
                log.warning(
                    "WorkspacePolicies may not be listed (RBAC): every namespace gets the default grant"
                )
            else:
                raise
            items = []
        for body in items:
            self._take_policy(body)
        self._changed.set()

    def policy_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        name = str((body.get("metadata") or {}).get("name", ""))
        if event_type == "DELETED":
            changed = self._policies.pop(name, None) is not None
            self._published.pop(name, None)
        else:
            changed = self._take_policy(body)
        if changed:
            self._changed.set()
            self._wake_all()

    def namespace_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        name = str(meta.get("name", ""))
        labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
        if event_type == "DELETED":
            changed = self._namespaces.pop(name, None) is not None
        else:
            changed = self._namespaces.get(name) != labels
            self._namespaces[name] = labels
        if changed:
            self._changed.set()
            # Only that namespace's Workspaces are judged by its labels (a new one has none yet).
            if self._wake_namespace is not None:
                self._wake_namespace(name)
            else:
                self._wake_all()

    def effective_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """The published object changed: deleted or edited by someone else, it is written again."""
        if (body.get("metadata") or {}).get("name") != EFFECTIVE_POLICY_NAME:
            return
        published = self._published_effective
        if event_type == "DELETED" or published is None or body.get("spec") != published.get("spec"):
            self._published_effective = None
            self._changed.set()

    def _take_policy(self, body: Mapping[str, Any]) -> bool:
        meta = body.get("metadata") or {}
        name = str(meta.get("name", ""))
        try:
            spec = WorkspacePolicySpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            # The schema admits nothing this refuses; an object from a newer CRD is ignored, not guessed at.
            log.warning("WorkspacePolicy %s cannot be read and grants nothing: %s", name, exc)
            return self._policies.pop(name, None) is not None
        entry = (int(meta.get("generation") or 0), spec)
        changed = self._policies.get(name) != entry
        self._policies[name] = entry
        return changed

    # -- what a reconcile asks -----------------------------------------------------------------------

    async def grant(self, namespace: str) -> Grant:
        """What `namespace` may use: the default plus every policy whose selector matches its labels."""
        labels = self._namespaces.get(namespace)
        if labels is None:
            labels = await self._read_labels(namespace)
            self._namespaces.setdefault(namespace, labels)
        return grant_for(((name, spec) for name, (_, spec) in self._policies.items()), labels)

    async def _read_labels(self, namespace: str) -> dict[str, str]:
        try:
            body = await self._kube.get_namespace(namespace)
        except ApiError as exc:
            if exc.status != HTTPStatus.FORBIDDEN:
                raise
            # Under namespaced RBAC: only policies that select every namespace can apply here.
            log.warning("namespace %s may not be read (RBAC): its labels count as none", namespace)
            return {}
        return {str(k): str(v) for k, v in ((body or {}).get("metadata") or {}).get("labels", {}).items()}

    @property
    def default_image_prefix(self) -> str:
        return self._default_image_prefix

    # -- what is published ---------------------------------------------------------------------------

    def admitted(self) -> list[str]:
        """The policies admission can read: the first MAX_POLICIES by name (the controller enforces all)."""
        return sorted(self._policies)[:MAX_POLICIES]

    def effective(self) -> dict[str, Any]:
        spec = EffectiveWorkspacePolicySpec(
            default_image_prefix=self._default_image_prefix,
            grants=tuple(
                EffectiveGrant(policy=name, **self._policies[name][1].model_dump())
                for name in self.admitted()
            ),
        )
        return {
            "apiVersion": API_VERSION,
            "kind": EFFECTIVE_KIND,
            "metadata": {"name": EFFECTIVE_POLICY_NAME},
            # Unset fields (a policy requiring no container runtime) are left out, not sent as null.
            "spec": spec.model_dump(by_alias=True, mode="json", exclude_none=True),
        }

    def statuses(self) -> dict[str, dict[str, Any]]:
        """Each policy's status: the namespaces its selector matches now."""
        result: dict[str, dict[str, Any]] = {}
        admitted = set(self.admitted())
        for name, (generation, spec) in self._policies.items():
            matched = sorted(
                ns
                for ns, labels in self._namespaces.items()
                if selector_matches(spec.namespace_selector, labels)
            )
            result[name] = WorkspacePolicyStatus(
                observed_generation=generation,
                matched_namespaces=tuple(matched[:MAX_MATCHED_NAMESPACES_LISTED]),
                matched_namespace_count=len(matched),
                admitted=name in admitted,
            ).to_dict()
        return result

    async def publish_forever(self) -> None:
        """Republish after every change (nothing is written when nothing changed); a failed publication
        is retried every few seconds."""
        while True:
            await self._changed.wait()
            await asyncio.sleep(PUBLISH_DELAY)
            self._changed.clear()
            try:
                await self.publish()
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                if exc.status == HTTPStatus.FORBIDDEN:
                    # Under namespaced RBAC there is nothing to publish to; admission is the cluster's.
                    log.warning("the workspace policies may not be published (RBAC): %s", exc)
                    continue
                log.warning("publishing the workspace policies failed (retrying): %s", exc)
                self._changed.set()
                await asyncio.sleep(RETRY_DELAY)
            except Exception:  # the publisher must outlive any one failure
                log.exception("publishing the workspace policies failed (retrying)")
                self._changed.set()
                await asyncio.sleep(RETRY_DELAY)

    async def publish(self) -> None:
        if len(self._policies) > MAX_POLICIES:
            left_out = sorted(self._policies)[MAX_POLICIES:]
            log.error(
                "%d WorkspacePolicies exist; admission reads the first %d by name and not %s (the controller "
                "enforces them all): merge policies",
                len(self._policies),
                MAX_POLICIES,
                ", ".join(left_out),
            )
        effective = self.effective()
        if effective != self._published_effective:
            await self._kube.apply_effective_policy(effective)
            self._published_effective = effective
        for name, status in self.statuses().items():
            if self._published.get(name) == status:
                continue
            try:
                await self._kube.patch_workspace_policy_status(name, status)
            except ApiError as exc:
                if not exc.not_found:
                    raise
                continue  # deleted meanwhile
            self._published[name] = status
