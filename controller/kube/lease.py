"""Lease objects (`coordination.k8s.io/v1`) for leader election: read, create, replace.

A thin adapter over `KubeClient.request`: it turns a Lease's spec into the core's `LeaseRecord` and back,
and nothing else. A write that loses a race (409 Conflict: the Lease was created, or changed since it was
read) is an outcome, `LeaseConflict`, not an error: it is how optimistic concurrency says "read again".
Every other failure is the client's `ApiError` (status 0 when the API server cannot be reached).

`LeaseApi` is what the elector asks of it; unit tests give it an in-memory fake.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from controller.core.leader import LeaseRecord
from controller.kube.client import ApiError

GROUP_VERSION = "coordination.k8s.io/v1"


@dataclass(frozen=True)
class StoredLease:
    """A Lease as the API server returned it: its record, the resourceVersion a replace must carry, and
    the whole object, so a replace keeps what leader election does not own (labels, other spec fields)."""

    namespace: str
    name: str
    resource_version: str
    record: LeaseRecord
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class LeaseConflict:
    """A create found the Lease already there, or a replace found it changed since it was read."""

    message: str = ""


class LeaseApi(Protocol):
    """The Lease calls leader election makes. Errors other than a conflict raise `ApiError`."""

    async def get_lease(self, namespace: str, name: str) -> StoredLease | None:
        """The Lease, or None when there is none."""
        ...

    async def create_lease(
        self, namespace: str, name: str, record: LeaseRecord
    ) -> StoredLease | LeaseConflict: ...

    async def replace_lease(self, current: StoredLease, record: LeaseRecord) -> StoredLease | LeaseConflict:
        """Write `record` over `current`, only if the Lease is still at `current.resource_version`."""
        ...


class Requester(Protocol):
    """The one method of `KubeClient` this adapter uses."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
    ) -> Any: ...


def lease_path(namespace: str, name: str = "") -> str:
    base = f"/apis/{GROUP_VERSION}/namespaces/{namespace}/leases"
    return f"{base}/{name}" if name else base


class LeaseClient:
    """`LeaseApi` over the API server, through a `KubeClient` (or anything with its `request`)."""

    def __init__(self, kube: Requester) -> None:
        self._kube = kube

    async def get_lease(self, namespace: str, name: str) -> StoredLease | None:
        try:
            obj = await self._kube.request("GET", lease_path(namespace, name))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        return stored_lease(obj)

    async def create_lease(
        self, namespace: str, name: str, record: LeaseRecord
    ) -> StoredLease | LeaseConflict:
        body = {
            "apiVersion": GROUP_VERSION,
            "kind": "Lease",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec_of(record),
        }
        try:
            obj = await self._kube.request("POST", lease_path(namespace), body=body)
        except ApiError as exc:
            if exc.conflict:
                return LeaseConflict(exc.message)
            raise
        return stored_lease(obj)

    async def replace_lease(self, current: StoredLease, record: LeaseRecord) -> StoredLease | LeaseConflict:
        body: dict[str, Any] = copy.deepcopy(dict(current.raw))
        body.setdefault("apiVersion", GROUP_VERSION)
        body.setdefault("kind", "Lease")
        metadata = body.setdefault("metadata", {})
        metadata.update(
            name=current.name, namespace=current.namespace, resourceVersion=current.resource_version
        )
        body["spec"] = {**(body.get("spec") or {}), **spec_of(record)}
        try:
            obj = await self._kube.request("PUT", lease_path(current.namespace, current.name), body=body)
        except ApiError as exc:
            if exc.conflict:
                return LeaseConflict(exc.message)
            raise
        return stored_lease(obj)


# --- the wire format -------------------------------------------------------------------------------


def stored_lease(obj: Mapping[str, Any]) -> StoredLease:
    """A Lease object from the API server as a `StoredLease`."""
    metadata = obj.get("metadata") or {}
    return StoredLease(
        namespace=metadata.get("namespace", ""),
        name=metadata.get("name", ""),
        resource_version=metadata.get("resourceVersion", ""),
        record=record_of(obj.get("spec") or {}),
        raw=obj,
    )


def record_of(spec: Mapping[str, Any]) -> LeaseRecord:
    """A Lease spec as a `LeaseRecord`; absent (or null) fields read as "nobody", "unknown", 0."""
    return LeaseRecord(
        holder=spec.get("holderIdentity") or "",
        lease_duration_seconds=spec.get("leaseDurationSeconds"),
        acquire_time=parse_micro_time(spec.get("acquireTime")),
        renew_time=parse_micro_time(spec.get("renewTime")),
        lease_transitions=spec.get("leaseTransitions") or 0,
    )


def spec_of(record: LeaseRecord) -> dict[str, Any]:
    """The Lease spec fields leader election owns. An empty holder is written as "", as client-go does."""
    spec: dict[str, Any] = {"holderIdentity": record.holder, "leaseTransitions": record.lease_transitions}
    if record.lease_duration_seconds is not None:
        spec["leaseDurationSeconds"] = record.lease_duration_seconds
    if record.acquire_time is not None:
        spec["acquireTime"] = format_micro_time(record.acquire_time)
    if record.renew_time is not None:
        spec["renewTime"] = format_micro_time(record.renew_time)
    return spec


def format_micro_time(moment: datetime) -> str:
    """A MicroTime: RFC 3339 in UTC with exactly six fractional digits (2026-11-30T20:01:55.123456Z).
    A naive datetime is taken to be UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro_time(text: str | None) -> datetime | None:
    """A MicroTime (or any RFC 3339 time) as an aware datetime; None for null. The API server validates
    these fields, so a value it returns always parses."""
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
