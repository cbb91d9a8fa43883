"""Reading what a Workspace refers to in other Kubernetes objects into `ResolvedInputs`.

Secrets and ConfigMaps named by spec.env, spec.config.fromConfigMaps, spec.authToken and
spec.imagePullSecrets. A missing object or key is a `Cause` (reported as Stalled, and re-checked
on every resync, so creating the Secret later heals the Workspace). Messages name objects and keys,
never values.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any

from controller.api.workspace import API_VERSION, KIND, EnvFromSource, KeySelector, WorkspaceSpec
from controller.core.causes import Cause, Reason
from controller.core.configfiles import new_auth_token
from controller.core.env import expand_env_from
from controller.core.identity import WorkspaceRef
from controller.core.naming import auth_token_secret_name
from controller.core.plan import ResolvedInputs
from controller.kube.client import ApiError, KubeApi
from controller.kube.referenced_objects import CONFIG_MAPS, SECRETS, Key, ReferencedObjects

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "workspace-controller"
TOKEN_KEY = "token"
DOCKERCONFIGJSON = ".dockerconfigjson"


class _Unresolved(Exception):
    """Ends a resolution early with the Cause to report."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.cause = Cause(reason, message)


def _decode(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _Unresolved(Reason.INVALID_CONFIG, "a Secret value is not valid base64") from exc


def _credential_values(document: dict[str, Any]) -> set[str]:
    """The secret strings of a Docker config document: every field of every entry but the username."""
    values: set[str] = set()
    for entry in (document.get("auths") or {}).values():
        if isinstance(entry, dict):
            values.update(v for k, v in entry.items() if k != "username" and isinstance(v, str) and v)
    return values


class InputResolver:
    """Resolves inputs from the watch-kept referenced objects (one read of each per pass, several
    references share it), and records what each Workspace referenced so that a change wakes it."""

    def __init__(self, kube: KubeApi, objects: ReferencedObjects) -> None:
        self._kube = kube
        self._objects = objects

    async def resolve(
        self, ws: WorkspaceRef, spec: WorkspaceSpec, *, new_token: str | None = None
    ) -> ResolvedInputs | Cause:
        """The inputs (with the name of the Secret holding the auth token); or what is missing.

        new_token: the token a controller-owned token Secret is created with when it does not exist yet
        (a warm slot's, made with one; else a new random one)."""
        read: dict[Key, dict[str, Any] | None] = {}
        try:
            return await self._resolve(ws, spec, read, new_token)
        finally:
            # Even a resolution that stopped at a missing object: that object's arrival wakes it.
            self._objects.referenced(ws.uid, read)

    async def _resolve(
        self,
        ws: WorkspaceRef,
        spec: WorkspaceSpec,
        read: dict[Key, dict[str, Any] | None],
        new_token: str | None,
    ) -> ResolvedInputs | Cause:
        async def secret(name: str) -> dict[str, Any] | None:
            key: Key = (SECRETS, ws.namespace, name)
            if key not in read:
                read[key] = await self._objects.get(*key)
            return read[key]

        async def config_map(name: str) -> dict[str, Any] | None:
            key: Key = (CONFIG_MAPS, ws.namespace, name)
            if key not in read:
                read[key] = await self._objects.get(*key)
            return read[key]

        secret_values: set[str] = set()

        async def key_value(ref: KeySelector, kind: str, where: str) -> str | None:
            if kind == "Secret":
                obj = await secret(ref.name)
                data = (obj or {}).get("data") or {}
                raw = data.get(ref.key)
                value = None if raw is None else _decode(raw).decode("utf-8", errors="replace")
                reason = Reason.SECRET_NOT_FOUND
                if value is not None:
                    secret_values.add(value)
            else:
                obj = await config_map(ref.name)
                value = ((obj or {}).get("data") or {}).get(ref.key)
                reason = Reason.CONFIG_MAP_NOT_FOUND
            if value is not None:
                if "\x00" in str(value):
                    raise _Unresolved(
                        Reason.INVALID_CONFIG,
                        f"{kind} {ws.namespace}/{ref.name} key {ref.key!r} ({where}) holds a NUL byte, "
                        "which an environment variable cannot carry",
                    )
                return str(value)
            if ref.optional:
                return None
            if obj is None:
                raise _Unresolved(reason, f"{kind} {ws.namespace}/{ref.name} ({where}) not found")
            raise _Unresolved(reason, f"{kind} {ws.namespace}/{ref.name} has no key {ref.key!r} ({where})")

        unusable: dict[str, str] = {}
        """envFrom variable name -> why its value cannot be used (the last source naming it decides)."""

        async def env_source(index: int, source: EnvFromSource) -> tuple[str, str, dict[str, str]] | None:
            where = f"spec.envFrom[{index}]"
            if source.secret_ref is not None:
                ref, kind, reason = source.secret_ref, "Secret", Reason.SECRET_NOT_FOUND
                obj = await secret(ref.name)
                raw = (obj or {}).get("data") or {}
                data = {k: _decode(v).decode("utf-8", errors="replace") for k, v in raw.items()}
                secret_values.update(data.values())
            else:
                assert source.config_map_ref is not None  # the schema requires exactly one
                ref, kind, reason = source.config_map_ref, "ConfigMap", Reason.CONFIG_MAP_NOT_FOUND
                obj = await config_map(ref.name)
                data = {str(k): str(v) for k, v in ((obj or {}).get("data") or {}).items()}
            if obj is None:
                if ref.optional:
                    return None
                raise _Unresolved(reason, f"{kind} {ws.namespace}/{ref.name} ({where}) not found")
            for key, value in data.items():
                # Judged once the merge says which keys are used: a skipped or overridden one may hold it.
                name = source.prefix + key
                if "\x00" in value:
                    unusable[name] = (
                        f"{kind} {ws.namespace}/{ref.name} key {key!r} ({where}) holds a NUL byte, "
                        "which an environment variable cannot carry"
                    )
                else:
                    unusable.pop(name, None)
            return source.prefix, f"{kind} {ref.name}", data

        try:
            env: list[tuple[str, str]] = []
            for var in spec.env:
                if var.value_from is None:
                    env.append((var.name, var.value or ""))
                    continue
                source = var.value_from
                where = f"spec.env {var.name}"
                if source.secret_key_ref is not None:
                    value = await key_value(source.secret_key_ref, "Secret", where)
                else:
                    assert source.config_map_key_ref is not None  # the schema requires exactly one
                    value = await key_value(source.config_map_key_ref, "ConfigMap", where)
                if value is not None:
                    env.append((var.name, value))

            sources = [await env_source(i, source) for i, source in enumerate(spec.env_from)]
            env, skipped_env = expand_env_from([found for found in sources if found is not None], env)
            explicit = {var.name for var in spec.env}
            for name, _ in env:
                if name in unusable and name not in explicit:
                    raise _Unresolved(Reason.INVALID_CONFIG, unusable[name])

            maps: list[dict[str, str | bytes]] = []
            for source_map in spec.config.from_config_maps:
                obj = await config_map(source_map.name)
                if obj is None:
                    if source_map.optional:
                        maps.append({})  # kept in step with the spec's list (each has its write policy)
                        continue
                    raise _Unresolved(
                        Reason.CONFIG_MAP_NOT_FOUND,
                        f"ConfigMap {ws.namespace}/{source_map.name} (spec.config.fromConfigMaps) not found",
                    )
                files: dict[str, str | bytes] = dict(obj.get("data") or {})
                for key, raw in (obj.get("binaryData") or {}).items():
                    files[key] = _decode(raw)
                maps.append(files)

            pull: list[dict[str, Any]] = []
            for ref in spec.image_pull_secrets:
                obj = await secret(ref.name)
                if obj is None:
                    raise _Unresolved(
                        Reason.SECRET_NOT_FOUND,
                        f"Secret {ws.namespace}/{ref.name} (spec.imagePullSecrets) not found",
                    )
                raw = (obj.get("data") or {}).get(DOCKERCONFIGJSON)
                if raw is None:
                    raise _Unresolved(
                        Reason.INVALID_CONFIG,
                        f"Secret {ws.namespace}/{ref.name} (spec.imagePullSecrets) "
                        f"has no {DOCKERCONFIGJSON} key",
                    )
                try:
                    document = json.loads(_decode(raw))
                except ValueError:
                    document = None
                if not isinstance(document, dict) or not isinstance(document.get("auths", {}), dict):
                    raise _Unresolved(
                        Reason.INVALID_CONFIG,
                        f"Secret {ws.namespace}/{ref.name}: {DOCKERCONFIGJSON} is not a Docker config "
                        'JSON object ({"auths": {...}})',
                    )
                pull.append(document)
                secret_values.update(_credential_values(document))

            token, token_secret = await self._auth_token(ws, spec, secret, new_token)
        except _Unresolved as unresolved:
            return unresolved.cause

        return ResolvedInputs(
            env=tuple(env),
            skipped_env=tuple(skipped_env),
            config_maps=tuple(maps),
            auth_token=token,
            auth_token_secret=token_secret,
            pull_secrets=tuple(pull),
            secret_values=frozenset(secret_values),
        )

    async def _auth_token(
        self,
        ws: WorkspaceRef,
        spec: WorkspaceSpec,
        secret: Callable[[str], Awaitable[dict[str, Any] | None]],
        new_token: str | None,
    ) -> tuple[str, str]:
        """The token and the Secret it is in: spec.authToken's, or the controller-owned one when it asks
        to generate one; nothing when it is unset (the token in /configs is the agent's business)."""
        if spec.auth_token is None:
            return "", ""
        if spec.auth_token.secret_ref is not None:
            ref = spec.auth_token.secret_ref
            obj = await secret(ref.name)
            raw = ((obj or {}).get("data") or {}).get(ref.key)
            if obj is None:
                raise _Unresolved(
                    Reason.SECRET_NOT_FOUND, f"Secret {ws.namespace}/{ref.name} (spec.authToken) not found"
                )
            if raw is None:
                raise _Unresolved(
                    Reason.SECRET_NOT_FOUND,
                    f"Secret {ws.namespace}/{ref.name} has no key {ref.key!r} (spec.authToken)",
                )
            return _decode(raw).decode("utf-8", errors="replace").strip(), ref.name

        name = auth_token_secret_name(ws.name)
        obj = await secret(name)
        if obj is None:
            obj = await self._create_token_secret(ws, name, new_token or new_auth_token())
        owners = (obj.get("metadata") or {}).get("ownerReferences") or []
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if labels.get(MANAGED_BY_LABEL) != MANAGED_BY and not any(o.get("uid") == ws.uid for o in owners):
            raise _Unresolved(
                Reason.INVALID_AUTH_TOKEN,
                f"Secret {ws.namespace}/{name} exists but was not made by this controller; "
                "delete it, or name it in spec.authToken.secretRef",
            )
        raw = (obj.get("data") or {}).get(TOKEN_KEY)
        if raw is None:
            raise _Unresolved(
                Reason.INVALID_AUTH_TOKEN, f"Secret {ws.namespace}/{name} has no key {TOKEN_KEY!r}"
            )
        return _decode(raw).decode("utf-8", errors="replace").strip(), name

    async def _create_token_secret(self, ws: WorkspaceRef, name: str, token: str) -> dict[str, Any]:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": ws.namespace,
                "labels": {MANAGED_BY_LABEL: MANAGED_BY, "molecule.ai/workspace-name": ws.name},
                # Garbage-collected with the Workspace in clusters that run kube-controller-manager.
                "ownerReferences": [
                    {
                        "apiVersion": API_VERSION,
                        "kind": KIND,
                        "name": ws.name,
                        "uid": ws.uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "data": {TOKEN_KEY: base64.b64encode(token.encode()).decode()},
        }
        try:
            created = await self._kube.create_secret(ws.namespace, body)
        except ApiError as exc:
            if not exc.conflict:
                raise
            # Created concurrently (a previous pass whose answer was lost): use what is there.
            existing = await self._kube.get_secret(ws.namespace, name)
            if existing is None:
                raise
            created = existing
        self._objects.created(SECRETS, ws.namespace, created)
        return created
