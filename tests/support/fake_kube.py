"""FakeKube: an in-memory stand-in for the controller's `KubeApi` (its own seam), for unit tests and the
Docker-cost benchmark, where the API server is not what is measured.

Status patches are applied as the API server applies a JSON merge patch, so a test reads back the
status a cluster would hold; Events are recorded in order. Workspace lists are recorded too (the namespace
asked for, None for all), and `namespaced_rbac` refuses the cluster-wide list with 403 Forbidden, as the
API server does for a ServiceAccount bound only to Roles in some namespaces.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.core.identity import WorkspaceRef
from controller.kube.client import ApiError


@dataclass(frozen=True)
class RecordedEvent:
    workspace: WorkspaceRef
    type: str
    reason: str
    message: str


@dataclass
class FakeKube:
    secrets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    config_maps: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    statuses: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    workspaces: list[dict[str, Any]] = field(default_factory=list)
    events: list[RecordedEvent] = field(default_factory=list)
    status_patches: list[dict[str, Any]] = field(default_factory=list)
    unreachable: bool = False
    namespaced_rbac: bool = False
    workspace_lists: list[str | None] = field(default_factory=list)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    """Namespace name -> its labels."""
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    """WorkspacePolicy name -> the object (its status as patched)."""
    effective: dict[str, Any] | None = None
    """The EffectiveWorkspacePolicy as last applied."""
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """Workspace objects by (namespace, name), for metadata JSON patches (the finalizer)."""
    workspace_patches: list[list[dict[str, Any]]] = field(default_factory=list)
    docker_hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """DockerHost name -> the object (its status as patched)."""
    docker_host_status_patches: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    templates: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """WorkspaceTemplate objects by (namespace, name)."""
    template_reads: int = 0
    deleted: list[tuple[str, str, str]] = field(default_factory=list)
    """Workspaces deleted by the controller: (namespace, name, uid)."""
    pool_statuses: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """WorkspacePool (namespace, name) -> its status as last written."""

    def add_secret(self, namespace: str, name: str, data: Mapping[str, str], **metadata: Any) -> None:
        encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
        self.secrets[(namespace, name)] = {
            "metadata": {"name": name, "namespace": namespace, **metadata},
            "data": encoded,
        }

    def reasons(self) -> list[str]:
        return [event.reason for event in self.events]

    def _check(self) -> None:
        if self.unreachable:
            raise ApiError(0, "Unreachable", "connection refused")

    async def patch_workspace_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self._check()
        self.status_patches.append(dict(status))
        self.statuses[(namespace, name)] = apply_merge_patch(self.statuses.get((namespace, name), {}), status)

    async def list_workspaces(self, namespace: str | None = None) -> list[dict[str, Any]]:
        self.workspace_lists.append(namespace)
        self._check()
        if self.namespaced_rbac and namespace is None:
            raise ApiError(403, "Forbidden", "cannot list resource workspaces at the cluster scope")
        return [
            w for w in self.workspaces if namespace is None or w["metadata"].get("namespace") == namespace
        ]

    async def patch_workspace(
        self, namespace: str, name: str, operations: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """RFC 6902 as the API server applies it: all operations or none (a failed test is a 422)."""
        self._check()
        self.workspace_patches.append(operations)
        current = self.objects.get((namespace, name))
        if current is None:
            raise ApiError(404, "NotFound", f"workspaces {name} not found")
        patched = copy.deepcopy(current)
        for op in operations:
            apply_json_patch_operation(patched, op)
        version = int((patched.get("metadata") or {}).get("resourceVersion") or 0) + 1
        patched.setdefault("metadata", {})["resourceVersion"] = str(version)
        self.objects[(namespace, name)] = patched
        return copy.deepcopy(patched)

    async def annotate_workspace(
        self, namespace: str, name: str, uid: str, annotations: Mapping[str, str | None]
    ) -> None:
        """A merge patch of the annotations with a uid precondition, as the client sends it."""
        self._check()
        current = self.objects.get((namespace, name))
        if current is None:
            raise ApiError(404, "NotFound", f"workspaces {name} not found")
        if (current.get("metadata") or {}).get("uid") != uid:
            raise ApiError(409, "Conflict", "Precondition failed: UID in precondition")
        meta = current.setdefault("metadata", {})
        meta["annotations"] = apply_merge_patch(meta.get("annotations") or {}, dict(annotations))

    async def patch_pool_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self._check()
        self.pool_statuses[(namespace, name)] = dict(status)

    async def list_workspace_policies(self) -> list[dict[str, Any]]:
        self._check()
        return [dict(policy) for policy in self.policies.values()]

    async def patch_workspace_policy_status(self, name: str, status: Mapping[str, Any]) -> None:
        self._check()
        if name not in self.policies:
            raise ApiError(404, "NotFound", f"workspacepolicies {name} not found")
        policy = self.policies[name]
        policy["status"] = apply_merge_patch(policy.get("status", {}), status)

    async def apply_effective_policy(self, body: Mapping[str, Any]) -> None:
        self._check()
        self.effective = dict(body)

    async def list_docker_hosts(self) -> list[dict[str, Any]]:
        self._check()
        return [dict(host) for host in self.docker_hosts.values()]

    async def patch_docker_host_status(self, name: str, status: Mapping[str, Any]) -> None:
        self._check()
        if name not in self.docker_hosts:
            raise ApiError(404, "NotFound", f"dockerhosts {name} not found")
        self.docker_host_status_patches.append((name, dict(status)))
        host = self.docker_hosts[name]
        host["status"] = apply_merge_patch(host.get("status", {}), status)

    async def get_namespace(self, name: str) -> dict[str, Any] | None:
        self._check()
        labels = self.namespaces.get(name)
        return None if labels is None else {"metadata": {"name": name, "labels": dict(labels)}}

    async def delete_workspace(self, namespace: str, name: str, uid: str) -> None:
        self._check()
        self.deleted.append((namespace, name, uid))

    async def get_workspace_template(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._check()
        self.template_reads += 1
        found = self.templates.get((namespace, name))
        return None if found is None else dict(found)

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._check()
        return self.secrets.get((namespace, name))

    async def create_secret(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        self._check()
        key = (namespace, body["metadata"]["name"])
        if key in self.secrets:
            raise ApiError(409, "AlreadyExists", f"secrets {key[1]} already exists")
        self.secrets[key] = dict(body)
        return dict(body)

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._check()
        return self.config_maps.get((namespace, name))

    async def post_event(
        self, workspace: WorkspaceRef, *, type_: str, reason: str, message: str, now: str
    ) -> None:
        self._check()
        self.events.append(RecordedEvent(workspace, type_, reason, message))


def apply_json_patch_operation(document: dict[str, Any], op: Mapping[str, Any]) -> None:
    """One RFC 6902 operation (test, add, remove, replace) on `document`, in place."""
    *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in op["path"].split("/")[1:]]
    target: Any = document
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    kind = op["op"]
    if kind == "test":
        actual = target[int(last)] if isinstance(target, list) and last != "-" else target.get(last)
        if actual != op["value"]:
            raise ApiError(422, "Invalid", f"test of {op['path']} failed")
    elif kind == "add" and isinstance(target, list):
        target.append(op["value"]) if last == "-" else target.insert(int(last), op["value"])
    elif kind in ("add", "replace"):
        target[last] = op["value"]
    elif kind == "remove":
        if isinstance(target, list):
            del target[int(last)]
        else:
            del target[last]
    else:
        raise ValueError(f"unsupported JSON patch operation {kind!r}")


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies `application/merge-patch+json`."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result
