"""The Lease adapter's wire format: paths, bodies, MicroTimes, and 404 / 409 turned into outcomes.

`ScriptedRequester` stands in for `KubeClient.request`: it records each call and answers with the next
scripted reply (an object, or an `ApiError` to raise).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from controller.core.leader import LeaseRecord
from controller.kube.client import ApiError
from controller.kube.lease import (
    LeaseClient,
    LeaseConflict,
    StoredLease,
    format_micro_time,
    parse_micro_time,
    record_of,
    spec_of,
)
from tests.support.scripted_requests import Call, ScriptedRequester

NS, NAME = "workspace-controller", "leader"
PATH = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"
AT = datetime(2026, 11, 30, 20, 1, 55, 123456, tzinfo=UTC)
AT_TEXT = "2026-11-30T20:01:55.123456Z"


def lease_object(spec: dict[str, Any], *, version: str = "42", **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": NAME, "namespace": NS, "resourceVersion": version, "uid": "u-1", **metadata},
        "spec": spec,
    }


HELD_SPEC = {
    "holderIdentity": "replica-a",
    "leaseDurationSeconds": 15,
    "acquireTime": AT_TEXT,
    "renewTime": AT_TEXT,
    "leaseTransitions": 3,
}
HELD = LeaseRecord("replica-a", 15, AT, AT, 3)


def call(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


# --- MicroTime and the spec -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        pytest.param(AT, AT_TEXT, id="utc"),
        pytest.param(
            AT.replace(microsecond=0), "2026-11-30T20:01:55.000000Z", id="whole-second-keeps-6-digits"
        ),
        pytest.param(AT.astimezone(timezone(timedelta(hours=2))), AT_TEXT, id="other-zone-is-written-in-utc"),
        pytest.param(AT.replace(tzinfo=None), AT_TEXT, id="naive-is-utc"),
    ],
)
def test_micro_time_is_rfc3339_utc_with_microseconds(moment: datetime, text: str) -> None:
    assert format_micro_time(moment) == text
    assert parse_micro_time(text) == moment.replace(tzinfo=moment.tzinfo or UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(None, None, id="null"),
        pytest.param("", None, id="empty"),
        pytest.param("2026-11-30T20:01:55Z", AT.replace(microsecond=0), id="rfc3339-without-fraction"),
        pytest.param("2026-11-30T22:01:55.123456+02:00", AT, id="with-offset"),
    ],
)
def test_micro_time_parsing(text: str | None, expected: datetime | None) -> None:
    assert parse_micro_time(text) == expected


@pytest.mark.parametrize(
    ("spec", "record"),
    [
        pytest.param(HELD_SPEC, HELD, id="held"),
        pytest.param({}, LeaseRecord(), id="empty-spec"),
        pytest.param({"holderIdentity": None, "leaseTransitions": None}, LeaseRecord(), id="nulls"),
    ],
)
def test_spec_reads_as_a_record(spec: dict[str, Any], record: LeaseRecord) -> None:
    assert record_of(spec) == record


def test_a_released_record_writes_an_empty_holder() -> None:
    assert spec_of(LeaseRecord("", 1, AT, AT, 3)) == {
        "holderIdentity": "",
        "leaseDurationSeconds": 1,
        "acquireTime": AT_TEXT,
        "renewTime": AT_TEXT,
        "leaseTransitions": 3,
    }


# --- the calls ------------------------------------------------------------------------------------


def test_get_reads_the_lease() -> None:
    kube = ScriptedRequester([lease_object(HELD_SPEC)])

    lease = call(LeaseClient(kube).get_lease(NS, NAME))

    assert kube.calls == [Call("GET", f"{PATH}/{NAME}", None, "application/json")]
    assert (lease.namespace, lease.name, lease.resource_version, lease.record) == (NS, NAME, "42", HELD)


def test_get_of_a_missing_lease_is_none() -> None:
    kube = ScriptedRequester([ApiError(404, "NotFound", "leases.coordination.k8s.io leader not found")])

    assert call(LeaseClient(kube).get_lease(NS, NAME)) is None


@pytest.mark.parametrize("status", [0, 403, 500])
def test_other_errors_are_raised(status: int) -> None:
    error = ApiError(status, "Whatever", "no")
    client = LeaseClient(ScriptedRequester([error, error, error]))
    stored = StoredLease(NS, NAME, "42", HELD, lease_object(HELD_SPEC))

    for attempt in (
        client.get_lease(NS, NAME),
        client.create_lease(NS, NAME, HELD),
        client.replace_lease(stored, HELD),
    ):
        with pytest.raises(ApiError) as raised:
            call(attempt)
        assert raised.value.status == status


def test_create_posts_a_lease() -> None:
    kube = ScriptedRequester([lease_object(HELD_SPEC, version="1")])

    created = call(LeaseClient(kube).create_lease(NS, NAME, HELD))

    assert kube.calls == [
        Call(
            "POST",
            PATH,
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": NAME, "namespace": NS},
                "spec": HELD_SPEC,
            },
            "application/json",
        )
    ]
    assert isinstance(created, StoredLease)
    assert created.resource_version == "1"


def test_create_of_an_existing_lease_is_a_conflict() -> None:
    kube = ScriptedRequester([ApiError(409, "AlreadyExists", 'leases "leader" already exists')])

    outcome = call(LeaseClient(kube).create_lease(NS, NAME, HELD))

    assert outcome == LeaseConflict('leases "leader" already exists')


def test_replace_puts_the_whole_lease_at_the_version_read() -> None:
    """Labels and spec fields leader election does not own survive; the resourceVersion read is the
    precondition."""
    read = lease_object({**HELD_SPEC, "strategy": "OldestEmulationVersion"}, labels={"team": "x"})
    renewed = LeaseRecord("replica-a", 15, AT, AT + timedelta(seconds=2), 3)
    kube = ScriptedRequester([read, lease_object(spec_of(renewed), version="43")])
    client = LeaseClient(kube)
    current = call(client.get_lease(NS, NAME))

    written = call(client.replace_lease(current, renewed))

    put = kube.calls[1]
    assert (put.method, put.path) == ("PUT", f"{PATH}/{NAME}")
    assert put.body["metadata"] == {
        "name": NAME,
        "namespace": NS,
        "resourceVersion": "42",
        "uid": "u-1",
        "labels": {"team": "x"},
    }
    assert put.body["spec"] == {**spec_of(renewed), "strategy": "OldestEmulationVersion"}
    assert put.body["spec"]["renewTime"] == "2026-11-30T20:01:57.123456Z"
    assert read["spec"]["renewTime"] == AT_TEXT  # the object read is not changed
    assert isinstance(written, StoredLease)
    assert (written.resource_version, written.record) == ("43", renewed)


def test_replace_of_a_changed_lease_is_a_conflict() -> None:
    kube = ScriptedRequester([ApiError(409, "Conflict", "the object has been modified")])
    stored = StoredLease(NS, NAME, "41", HELD, lease_object(HELD_SPEC, version="41"))

    outcome = call(LeaseClient(kube).replace_lease(stored, HELD))

    assert isinstance(outcome, LeaseConflict)
