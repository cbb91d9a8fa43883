"""A small async Kubernetes API client for what kopf does not do for us.

kopf watches Workspaces and manages the finalizer; this client patches `/status`, reads the Secrets and
ConfigMaps a Workspace references, creates the generated auth-token Secret, posts Events and lists
Workspaces for the orphan sweep. It authenticates with the same credentials kopf logs in with.
It also reads WorkspacePolicies and Namespaces, writes the policies' status and publishes the
EffectiveWorkspacePolicy; it lists WorkspacePools, writes their status and annotates the Workspace a
warm agent is bound to. `KubeApi` is what the rest of the controller may ask of it (unit tests give it
an in-memory stand-in).
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import kopf

from controller import metrics
from controller.api.dockerhost import HOST_PLURAL
from controller.api.policy import EFFECTIVE_PLURAL, POLICY_PLURAL
from controller.api.pool import POOL_PLURAL
from controller.api.template import TEMPLATE_PLURAL
from controller.api.workspace import API_VERSION, GROUP, KIND, PLURAL, VERSION
from controller.core.identity import WorkspaceRef


class ApiError(Exception):
    """The API server answered with an error status (or could not be reached: status 0)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


class KubeApi(Protocol):
    """The Kubernetes calls the reconciler, the input resolver, the Event recorder and the sweep make."""

    async def patch_workspace_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None: ...

    async def list_workspaces(self, namespace: str | None = None) -> list[dict[str, Any]]: ...

    async def patch_workspace(
        self, namespace: str, name: str, operations: list[dict[str, Any]]
    ) -> dict[str, Any]: ...

    async def list_workspace_policies(self) -> list[dict[str, Any]]: ...

    async def patch_workspace_policy_status(self, name: str, status: Mapping[str, Any]) -> None: ...

    async def apply_effective_policy(self, body: Mapping[str, Any]) -> None: ...

    async def get_namespace(self, name: str) -> dict[str, Any] | None: ...

    async def get_workspace_template(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def delete_workspace(self, namespace: str, name: str, uid: str) -> None: ...

    async def list_docker_hosts(self) -> list[dict[str, Any]]: ...

    async def patch_docker_host_status(self, name: str, status: Mapping[str, Any]) -> None: ...

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def create_secret(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]: ...

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def post_event(
        self, workspace: WorkspaceRef, *, type_: str, reason: str, message: str, now: str
    ) -> None: ...


def _ssl_context(info: kopf.ConnectionInfo, scratch: Path) -> ssl.SSLContext | bool:
    if info.insecure:
        return False
    ctx = ssl.create_default_context()
    if info.ca_path:
        ctx.load_verify_locations(cafile=str(info.ca_path))
    elif info.ca_data:
        ctx.load_verify_locations(cadata=_pem(info.ca_data).decode("ascii"))
    cert, key = info.certificate_path, info.private_key_path
    # ssl needs files for client certificates; kubeconfigs often carry them inline.
    if info.certificate_data:
        cert = scratch / "client.crt"
        cert.write_bytes(_pem(info.certificate_data))
    if info.private_key_data:
        key = scratch / "client.key"
        key.touch(mode=0o600)
        key.write_bytes(_pem(info.private_key_data))
    if cert:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    return ctx


def _pem(value: str | bytes) -> bytes:
    """PEM as given, or decoded from the base64 a kubeconfig's `*-data` fields hold."""
    raw = value if isinstance(value, bytes) else value.encode()
    return raw if raw.lstrip().startswith(b"-----BEGIN ") else base64.b64decode(raw)


API_CONNECTIONS = 8
"""Connections to the API server at most (HTTP/1.1: one request each; more wait for a free one). A burst
of status writes and Events opened 80, each holding a 128 KiB TLS buffer for good (10 MiB of a 150 MiB
budget); client-go multiplexes everything over one HTTP/2 connection."""


class KubeClient:
    def __init__(self, info: kopf.ConnectionInfo, *, timeout: float = 30.0) -> None:
        self._scratch = tempfile.TemporaryDirectory(prefix="wc-kube-")
        headers = {"User-Agent": "workspace-controller"}
        if info.token:
            headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
        auth = aiohttp.BasicAuth(info.username, info.password or "") if info.username else None
        self._server = info.server.rstrip("/")
        self._session = aiohttp.ClientSession(
            headers=headers,
            auth=auth,
            connector=aiohttp.TCPConnector(
                ssl=_ssl_context(info, Path(self._scratch.name)), limit=API_CONNECTIONS
            ),
            timeout=aiohttp.ClientTimeout(total=timeout),
        )

    @classmethod
    def from_environment(cls, *, timeout: float = 30.0) -> KubeClient:
        """In-cluster ServiceAccount credentials, else KUBECONFIG / ~/.kube/config."""
        settings = kopf.OperatorSettings()
        info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
            settings=settings
        )
        if info is None:
            raise RuntimeError("no Kubernetes credentials: not in a cluster and no KUBECONFIG")
        return cls(info, timeout=timeout)

    async def close(self) -> None:
        await self._session.close()
        self._scratch.cleanup()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
    ) -> Any:
        data = None if body is None else json.dumps(body)
        try:
            async with self._session.request(
                method,
                self._server + path,
                data=data,
                params=params,
                headers={"Content-Type": content_type},
            ) as resp:
                metrics.KUBE_REQUESTS.labels(str(resp.status), method).inc()
                text = await resp.text()
                if resp.status >= 400:
                    try:
                        payload = json.loads(text)
                        raise ApiError(resp.status, payload.get("reason", ""), payload.get("message", text))
                    except ValueError:
                        raise ApiError(resp.status, resp.reason or "", text[:500]) from None
                return json.loads(text) if text else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            metrics.KUBE_REQUESTS.labels("<error>", method).inc()
            raise ApiError(0, "Unreachable", str(exc) or type(exc).__name__) from exc

    # --- Workspaces -------------------------------------------------------------------------------

    @staticmethod
    def workspace_path(namespace: str, name: str = "") -> str:
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
        return f"{base}/{name}" if name else base

    async def patch_workspace_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        await self.request(
            "PATCH",
            self.workspace_path(namespace, name) + "/status",
            body={"status": status},
            content_type="application/merge-patch+json",
        )

    async def patch_workspace(
        self, namespace: str, name: str, operations: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """A JSON patch of the Workspace's metadata (its finalizer); returns the object as stored."""
        result: dict[str, Any] = await self.request(
            "PATCH",
            self.workspace_path(namespace, name),
            body=operations,
            content_type="application/json-patch+json",
        )
        return result

    async def list_workspaces(
        self, namespace: str | None = None, page_size: int = 500
    ) -> list[dict[str, Any]]:
        """Every Workspace in the cluster (or one namespace), all pages; raises rather than return a
        partial list."""
        path = self.workspace_path(namespace) if namespace else f"/apis/{GROUP}/{VERSION}/{PLURAL}"
        return await self._list_all(path, page_size)

    async def annotate_workspace(
        self, namespace: str, name: str, uid: str, annotations: Mapping[str, str | None]
    ) -> None:
        """Set (or, for None, remove) annotations of this very Workspace: a merge patch of
        metadata.annotations with metadata.uid in it, so that a namesake created since is refused
        (409 Conflict) rather than annotated. Raises ApiError, a 404 included."""
        await self.request(
            "PATCH",
            self.workspace_path(namespace, name),
            body={"metadata": {"uid": uid, "annotations": dict(annotations)}},
            content_type="application/merge-patch+json",
        )

    # --- WorkspacePools ----------------------------------------------------------------------------

    @staticmethod
    def pool_path(namespace: str, name: str = "") -> str:
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{POOL_PLURAL}"
        return f"{base}/{name}" if name else base

    async def list_pools(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Every WorkspacePool in the cluster (or one namespace), all pages."""
        path = self.pool_path(namespace) if namespace else f"/apis/{GROUP}/{VERSION}/{POOL_PLURAL}"
        return await self._list_all(path)

    async def patch_pool_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """A merge patch of the pool's status; a pool deleted meanwhile is no error."""
        try:
            await self.request(
                "PATCH",
                self.pool_path(namespace, name) + "/status",
                body={"status": status},
                content_type="application/merge-patch+json",
            )
        except ApiError as exc:
            if not exc.not_found:
                raise

    # --- WorkspacePolicies, the effective policy, Namespaces ------------------------------------------

    async def list_workspace_policies(self) -> list[dict[str, Any]]:
        return await self._list_all(f"/apis/{GROUP}/{VERSION}/{POLICY_PLURAL}")

    async def patch_workspace_policy_status(self, name: str, status: Mapping[str, Any]) -> None:
        await self.request(
            "PATCH",
            f"/apis/{GROUP}/{VERSION}/{POLICY_PLURAL}/{name}/status",
            body={"status": status},
            content_type="application/merge-patch+json",
        )

    async def apply_effective_policy(self, body: Mapping[str, Any]) -> None:
        """Create or replace the EffectiveWorkspacePolicy (server-side apply; this controller owns it)."""
        name = body["metadata"]["name"]
        await self.request(
            "PATCH",
            f"/apis/{GROUP}/{VERSION}/{EFFECTIVE_PLURAL}/{name}",
            body=body,
            content_type="application/apply-patch+yaml",
            params={"fieldManager": "workspace-controller", "force": "true"},
        )

    async def get_namespace(self, name: str) -> dict[str, Any] | None:
        return await self._get_or_none(f"/api/v1/namespaces/{name}")

    async def delete_workspace(self, namespace: str, name: str, uid: str) -> None:
        """Delete this very Workspace (not a namesake created since: the uid is a precondition); gone
        already is done."""
        try:
            await self.request(
                "DELETE",
                self.workspace_path(namespace, name),
                body={"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}},
            )
        except ApiError as exc:
            if not exc.not_found:
                raise

    async def get_workspace_template(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get_or_none(
            f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{TEMPLATE_PLURAL}/{name}"
        )

    # --- DockerHosts -------------------------------------------------------------------------------

    async def list_docker_hosts(self) -> list[dict[str, Any]]:
        return await self._list_all(f"/apis/{GROUP}/{VERSION}/{HOST_PLURAL}")

    async def patch_docker_host_status(self, name: str, status: Mapping[str, Any]) -> None:
        await self.request(
            "PATCH",
            f"/apis/{GROUP}/{VERSION}/{HOST_PLURAL}/{name}/status",
            body={"status": status},
            content_type="application/merge-patch+json",
        )

    async def _list_all(self, path: str, page_size: int = 500) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        params: dict[str, str] = {"limit": str(page_size)}
        while True:
            page = await self.request("GET", path, params=params)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
            params["continue"] = token

    # --- Secrets and ConfigMaps ---------------------------------------------------------------------

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get_or_none(f"/api/v1/namespaces/{namespace}/secrets/{name}")

    async def create_secret(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.request(
            "POST", f"/api/v1/namespaces/{namespace}/secrets", body=body
        )
        return result

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get_or_none(f"/api/v1/namespaces/{namespace}/configmaps/{name}")

    async def _get_or_none(self, path: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self.request("GET", path)
            return result
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    # --- Events -------------------------------------------------------------------------------------

    async def post_event(
        self, workspace: WorkspaceRef, *, type_: str, reason: str, message: str, now: str
    ) -> None:
        """A core/v1 Event about a Workspace, what `kubectl describe` lists under Events."""
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{workspace.name}.", "namespace": workspace.namespace},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "namespace": workspace.namespace,
                "name": workspace.name,
                "uid": workspace.uid,
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "workspace-controller"},
            "reportingComponent": "workspace-controller",
            "reportingInstance": "workspace-controller",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        await self.request("POST", f"/api/v1/namespaces/{workspace.namespace}/events", body=body)
