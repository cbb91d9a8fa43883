"""The host registry: which hosts are driven (DockerHost objects, the implicit host, a shard's selector),
what asking a daemon `docker info` changes, when a DockerHost's status is written and what it says, and
how a watch event adds, updates, reconnects or drops a host. Every daemon is a FakeRuntime (an in-memory
fake of the project's own port) and the API is FakeKube; no background task runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.api.workspace import Placement
from controller.core import labels
from controller.core.placement import Resources, Unschedulable
from controller.core.selectors import parse_selector
from controller.docker import TlsFiles
from controller.kube.client import ApiError
from controller.port.errors import RuntimeUnavailable
from controller.port.runtime import ContainerRuntime
from controller.port.values import HostFacts
from controller.reconcile.hosts import Host, HostConfig, HostRegistry
from controller.reconcile.triggers import Triggers
from controller.settings import ControllerSettings
from tests.support.fake_kube import FakeKube
from tests.support.fake_runtime import FakeRuntime

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def host_body(
    name: str,
    *,
    endpoint: str | None = None,
    generation: int = 1,
    labels: Mapping[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "uid": f"host-{name}",
            "generation": generation,
            "labels": dict(labels or {}),
        },
        "spec": {"endpoint": endpoint or f"unix:///run/{name}.sock", **spec},
    }


class Connections:
    """The `connect` given to the registry: a new FakeRuntime per call, every call recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[HostConfig, TlsFiles | None]] = []
        self.runtimes: list[FakeRuntime] = []
        self.tls_contents: list[dict[str, bytes]] = []

    def __call__(self, config: HostConfig, tls: TlsFiles | None) -> ContainerRuntime:
        self.calls.append((config, tls))
        if tls is not None:
            # Read now: the files live only as long as the host is driven.
            self.tls_contents.append(
                {
                    "ca": Path(tls.ca_cert).read_bytes(),
                    "cert": Path(tls.client_cert).read_bytes(),
                    "key": Path(tls.client_key).read_bytes(),
                }
            )
        runtime = FakeRuntime()
        self.runtimes.append(runtime)
        return runtime

    def endpoints(self) -> list[str | None]:
        return [config.endpoint for config, _ in self.calls]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)


class Setup:
    """A registry over FakeKube's DockerHosts, with its connections, clock and triggers at hand."""

    def __init__(self, *bodies: dict[str, Any], kube: FakeKube | None = None, **settings: Any) -> None:
        self.kube = kube or FakeKube()
        for body in bodies:
            self.kube.docker_hosts[body["metadata"]["name"]] = body
        self.settings = ControllerSettings(instance="t", **settings)
        self.connections = Connections()
        self.clock = Clock()
        self.triggers = Triggers()
        self.registry = HostRegistry(
            settings=self.settings,
            kube=self.kube,
            triggers=self.triggers,
            connect=self.connections,
            clock=self.clock,
            background=False,
        )

    def host(self, name: str) -> Host:
        host = self.registry.get(name)
        assert host is not None, f"{name} is not driven"
        return host

    def runtime(self, name: str) -> FakeRuntime:
        runtime = self.host(name).runtime
        assert isinstance(runtime, FakeRuntime)
        return runtime

    def names(self) -> list[str]:
        return [host.name for host in self.registry.all()]

    def patches(self, name: str) -> list[dict[str, Any]]:
        return [status for host, status in self.kube.docker_host_status_patches if host == name]

    def status(self, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self.kube.docker_hosts[name]["status"]
        return status


class ForbiddenKube(FakeKube):
    """An API server that refuses to list DockerHosts (RBAC without them)."""

    async def list_docker_hosts(self) -> list[dict[str, Any]]:
        raise ApiError(403, "Forbidden", "cannot list resource dockerhosts at the cluster scope")


def ready_condition(status: Mapping[str, Any]) -> tuple[str, str, str]:
    found = next(c for c in status["conditions"] if c["type"] == "Ready")
    return found["status"], found["reason"], found["message"]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- load ----------------------------------------------------------------------------------------------


def test_load_drives_every_docker_host_and_the_implicit_host() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"), host_body("b"), docker_host="tcp://daemon:2375")
        await setup.registry.load()
        assert setup.names() == ["a", "b", "local"]
        local = setup.host("local")
        assert local.config.implicit
        assert local.config.endpoint == "tcp://daemon:2375"
        assert not setup.host("a").config.implicit
        assert sorted(e or "" for e in setup.connections.endpoints()) == [
            "tcp://daemon:2375",
            "unix:///run/a.sock",
            "unix:///run/b.sock",
        ]

    run(scenario())


def test_a_resync_wakes_every_workspace_but_those_its_list_shows_as_their_last_pass_settled_them() -> None:
    async def scenario() -> None:
        setup = Setup()
        await setup.registry.load()
        local = setup.host("local")
        for uid in ("settled", "other"):
            setup.runtime("local").add_foreign(f"ws-{uid}", {**labels.owned("t"), labels.UID_LABEL: uid})
        events = {uid: setup.triggers.register(uid) for uid in ("settled", "other", "unplaced")}
        await local.observer.refresh()
        local.observer.settle("ws-settled", await local.observer.observe("ws-settled"))
        await local.observer.refresh()

        setup.registry.resynced("local")

        assert {uid for uid, event in events.items() if event.is_set()} == {"other", "unplaced"}

    run(scenario())


def test_the_implicit_host_takes_the_configured_name_and_the_environments_daemon_by_default() -> None:
    async def scenario() -> None:
        setup = Setup(local_host="here")
        await setup.registry.load()
        assert setup.names() == ["here"]
        assert setup.host("here").config.endpoint is None
        assert setup.host("here").config.implicit

    run(scenario())


def test_an_empty_local_host_means_no_implicit_host() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"), local_host="")
        await setup.registry.load()
        assert setup.names() == ["a"]
        assert len(setup.connections.calls) == 1

    run(scenario())


def test_a_docker_host_named_like_the_implicit_host_replaces_it() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("local", endpoint="tcp://elsewhere:2376"), docker_host="tcp://daemon:2375")
        await setup.registry.load()
        assert setup.names() == ["local"]
        local = setup.host("local")
        assert not local.config.implicit
        assert local.bounded
        assert local.config.endpoint == "tcp://elsewhere:2376"
        assert setup.connections.endpoints() == ["tcp://elsewhere:2376"]

    run(scenario())


def test_an_invalid_docker_host_is_skipped_and_logged_and_the_others_driven(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        setup = Setup(
            host_body("bad", endpoint="http://nope:80"),
            host_body("ok"),
            {"metadata": {"name": "no-spec"}},
            local_host="",
        )
        await setup.registry.load()
        assert setup.names() == ["ok"]
        assert setup.connections.endpoints() == ["unix:///run/ok.sock"]

    with caplog.at_level(logging.WARNING, logger="controller.reconcile.hosts"):
        run(scenario())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("DockerHost bad is invalid" in message for message in warnings)
    assert any("DockerHost no-spec is invalid" in message for message in warnings)


def test_a_host_selector_drives_only_the_matching_docker_hosts() -> None:
    async def scenario() -> None:
        setup = Setup(
            host_body("a1", labels={"shard": "a"}),
            host_body("a2", labels={"shard": "a", "zone": "x"}),
            host_body("b1", labels={"shard": "b"}),
            host_body("none"),
            host_selector=parse_selector("shard=a"),
            local_host="",
        )
        await setup.registry.load()
        assert setup.names() == ["a1", "a2"]
        assert sorted(e or "" for e in setup.connections.endpoints()) == [
            "unix:///run/a1.sock",
            "unix:///run/a2.sock",
        ]

    run(scenario())


def test_load_without_permission_to_list_docker_hosts_drives_the_implicit_host_only() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"), kube=ForbiddenKube())
        await setup.registry.load()
        assert setup.names() == ["local"]
        assert setup.host("local").config.implicit

    run(scenario())


def test_load_when_the_api_server_cannot_be_reached_fails() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"))
        setup.kube.unreachable = True
        with pytest.raises(ApiError):
            await setup.registry.load()
        assert setup.names() == []

    run(scenario())


def test_only_docker_hosts_are_bounded() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"))
        await setup.registry.load()
        assert setup.host("a").bounded
        assert not setup.host("local").bounded

    run(scenario())


def test_a_docker_hosts_labels_cordon_and_capacity_are_what_placement_sees() -> None:
    async def scenario() -> None:
        body = host_body(
            "a", labels={"zone": "x"}, unschedulable=True, capacity={"cpus": 2.5, "memoryMiB": 1024}
        )
        setup = Setup(body, local_host="")
        await setup.registry.load()
        host = setup.host("a")
        assert dict(host.labels) == {"zone": "x"}
        assert host.unschedulable
        assert host.config.generation == 1
        (view,) = setup.registry.scheduler.views()
        assert (view.name, dict(view.labels), view.unschedulable) == ("a", {"zone": "x"}, True)
        assert view.capacity == Resources(2.5, 1024)

    run(scenario())


def test_a_tls_docker_host_connects_with_the_files_of_its_secret_removed_when_it_is_dropped() -> None:
    async def scenario() -> TlsFiles:
        body = host_body(
            "remote",
            endpoint="tcp://remote:2376",
            tls={"secretRef": {"name": "remote-tls", "namespace": "ops"}},
        )
        setup = Setup(body, local_host="")
        setup.kube.add_secret("ops", "remote-tls", {"ca.crt": "CA", "tls.crt": "CERT", "tls.key": "KEY"})
        await setup.registry.load()
        ((config, tls),) = setup.connections.calls
        assert config.tls_secret == ("ops", "remote-tls")
        assert tls is not None
        assert setup.connections.tls_contents == [{"ca": b"CA", "cert": b"CERT", "key": b"KEY"}]

        await setup.registry.close()
        return tls

    tls = run(scenario())
    assert not any(Path(path).exists() for path in (tls.ca_cert, tls.client_cert, tls.client_key))


def test_a_tls_docker_host_whose_secret_is_missing_or_incomplete_connects_without_tls_files() -> None:
    async def scenario() -> None:
        setup = Setup(
            host_body(
                "p", endpoint="tcp://p:2376", tls={"secretRef": {"name": "partial", "namespace": "ops"}}
            ),
            host_body(
                "m", endpoint="tcp://m:2376", tls={"secretRef": {"name": "missing", "namespace": "ops"}}
            ),
            local_host="",
        )
        setup.kube.add_secret("ops", "partial", {"ca.crt": "CA", "tls.crt": "CERT"})
        await setup.registry.load()
        assert sorted(setup.names()) == ["m", "p"]
        assert [files for _, files in setup.connections.calls] == [None, None]

    run(scenario())


# --- check ---------------------------------------------------------------------------------------------


def test_the_first_check_of_an_answering_daemon_makes_the_host_ready() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"), local_host="")
        await setup.registry.load()
        host = setup.host("a")
        assert not host.ready
        assert host.answered is None
        assert await setup.registry.check(host) is True
        assert host.ready
        assert host.answered is True
        assert host.problem == ""
        assert host.facts == setup.runtime("a").facts
        assert host.dirty.is_set()
        assert setup.runtime("a").count("info") == 1

    run(scenario())


def test_a_second_identical_check_changes_nothing() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"), local_host="")
        await setup.registry.load()
        host = setup.host("a")
        await setup.registry.check(host)
        host.dirty.clear()
        assert await setup.registry.check(host) is False
        assert not host.dirty.is_set()
        assert host.ready

    run(scenario())


def test_the_first_check_of_a_daemon_that_never_answered_is_a_change_so_it_is_published() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"), local_host="")
        await setup.registry.load()
        host = setup.host("a")
        setup.runtime("a").fail("info", RuntimeUnavailable("connection refused"), always=True)
        assert await setup.registry.check(host) is True
        assert host.dirty.is_set()
        assert not host.ready
        assert host.answered is False
        assert "not answering" in host.problem
        assert "connection refused" in host.problem
        assert host.facts is None

        await setup.registry.publish(host)
        status, reason, message = ready_condition(setup.status("a"))
        assert (status, reason) == ("False", "Unreachable")
        assert "connection refused" in message

    run(scenario())


def test_a_daemon_that_keeps_failing_is_a_change_only_once() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"), local_host="")
        await setup.registry.load()
        host = setup.host("a")
        setup.runtime("a").fail("info", RuntimeUnavailable("connection refused"), always=True)
        assert await setup.registry.check(host) is True
        host.dirty.clear()
        assert await setup.registry.check(host) is False
        assert not host.dirty.is_set()

    run(scenario())


def test_a_host_that_stops_answering_and_comes_back_changes_each_time() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"), local_host="")
        await setup.registry.load()
        host = setup.host("a")
        runtime = setup.runtime("a")
        assert await setup.registry.check(host) is True
        runtime.fail("info", RuntimeUnavailable("connection refused"), always=True)
        assert await setup.registry.check(host) is True
        assert not host.ready
        assert "connection refused" in host.problem
        runtime.heal("info")
        assert await setup.registry.check(host) is True
        assert host.ready
        assert host.problem == ""

    run(scenario())


def test_new_facts_from_the_daemon_are_a_change() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"), local_host="")
        await setup.registry.load()
        host = setup.host("a")
        await setup.registry.check(host)
        setup.runtime("a").facts = HostFacts(server_version="fake-2", cpus=8, memory_bytes=16 << 30)
        assert await setup.registry.check(host) is True
        assert host.facts is not None
        assert host.facts.server_version == "fake-2"

    run(scenario())


def test_a_daemon_that_answers_without_resources_is_not_ready_unless_the_spec_gives_capacity() -> None:
    async def scenario() -> None:
        setup = Setup(
            host_body("measured"),
            host_body("given", capacity={"cpus": 2, "memoryMiB": 512}),
            local_host="",
        )
        await setup.registry.load()
        for name in ("measured", "given"):
            setup.runtime(name).facts = HostFacts(server_version="fake")
            await setup.registry.check(setup.host(name))
        assert setup.host("measured").answered is True
        assert not setup.host("measured").ready
        assert setup.host("given").ready

    run(scenario())


# --- publish -------------------------------------------------------------------------------------------


def test_a_host_not_checked_yet_is_published_as_connecting() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a", generation=4), local_host="")
        await setup.registry.load()
        await setup.registry.publish(setup.host("a"))
        status = setup.status("a")
        assert ready_condition(status)[:2] == ("Unknown", "Connecting")
        assert status["observedGeneration"] == 4
        assert "capacity" not in status

    run(scenario())


def test_publish_writes_a_ready_hosts_status_once_until_something_changes() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a", generation=2), local_host="")
        await setup.registry.load()
        host = setup.host("a")
        await setup.registry.check(host)
        await setup.registry.publish(host)
        assert len(setup.patches("a")) == 1
        status = setup.status("a")
        assert ready_condition(status) == ("True", "Reachable", "Docker Engine fake answers")
        assert status["observedGeneration"] == 2
        assert status["info"] == {"serverVersion": "fake", "cpus": 4, "memoryBytes": 8 << 30}
        assert status["capacity"] == {"cpus": 4.0, "memoryMiB": 8192}
        assert status["allocated"] == {
            "cpus": 0.0,
            "memoryMiB": 0,
            "workspaces": 0,
            "byTier": {"1": 0, "2": 0, "3": 0, "4": 0},
        }

        setup.clock.advance(10)
        await setup.registry.check(host)
        await setup.registry.publish(host)
        assert len(setup.patches("a")) == 1

    run(scenario())


def test_publish_never_writes_for_the_implicit_host() -> None:
    async def scenario() -> None:
        setup = Setup()
        await setup.registry.load()
        local = setup.host("local")
        await setup.registry.check(local)
        setup.registry.scheduler.record("u1", "local", setup.registry.scheduler.request(1))
        await setup.registry.publish(local)
        assert setup.kube.docker_host_status_patches == []

    run(scenario())


def test_the_published_allocation_follows_the_ledger_and_zeros_a_tier_emptied() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"), host_body("b"), local_host="")
        await setup.registry.load()
        scheduler = setup.registry.scheduler
        for host in setup.registry.all():
            await setup.registry.check(host)
            await setup.registry.publish(host)
            host.dirty.clear()

        scheduler.record("u1", "a", scheduler.request(1))
        scheduler.record("u2", "a", scheduler.request(3))
        assert setup.host("a").dirty.is_set()
        assert not setup.host("b").dirty.is_set()
        await setup.registry.publish(setup.host("a"))
        assert setup.status("a")["allocated"] == {
            "cpus": 2.5,
            "memoryMiB": 256 + 2048,
            "workspaces": 2,
            "byTier": {"1": 1, "2": 0, "3": 1, "4": 0},
        }

        scheduler.release("u2")
        await setup.registry.publish(setup.host("a"))
        # Read back as the API server merged the patch: tier 3 is back to zero, not left at 1.
        assert setup.status("a")["allocated"] == {
            "cpus": 0.5,
            "memoryMiB": 256,
            "workspaces": 1,
            "byTier": {"1": 1, "2": 0, "3": 0, "4": 0},
        }
        assert len(setup.patches("a")) == 3
        assert len(setup.patches("b")) == 1

    run(scenario())


def test_a_move_in_the_ledger_marks_both_hosts_for_publishing() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"), host_body("b"), local_host="")
        await setup.registry.load()
        scheduler = setup.registry.scheduler
        scheduler.record("u1", "a", scheduler.request(2))
        for host in setup.registry.all():
            host.dirty.clear()
        scheduler.record("u1", "b", scheduler.request(2))
        assert setup.host("a").dirty.is_set()
        assert setup.host("b").dirty.is_set()

    run(scenario())


def test_seeding_the_ledger_marks_the_hosts_it_names_for_publishing() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"), host_body("b"), local_host="")
        await setup.registry.load()
        for host in setup.registry.all():
            host.dirty.clear()
        setup.registry.scheduler.seed(
            [{"metadata": {"uid": "u1"}, "spec": {"tier": 2}, "status": {"host": "b"}}]
        )
        assert setup.host("b").dirty.is_set()
        assert not setup.host("a").dirty.is_set()

    run(scenario())


def test_the_ready_conditions_transition_time_holds_while_the_host_keeps_answering() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"), local_host="")
        await setup.registry.load()
        host = setup.host("a")
        scheduler = setup.registry.scheduler
        await setup.registry.check(host)
        await setup.registry.publish(host)
        first = next(c for c in setup.status("a")["conditions"] if c["type"] == "Ready")
        assert first["lastTransitionTime"] == "2026-01-01T12:00:00Z"

        setup.clock.advance(5)
        scheduler.record("u1", "a", scheduler.request(1))
        await setup.registry.publish(host)
        assert len(setup.patches("a")) == 2
        # Only the allocation changed: the condition is not in the patch's changes.
        assert setup.patches("a")[1]["conditions"] == setup.patches("a")[0]["conditions"]

        setup.clock.advance(5)
        setup.runtime("a").fail("info", RuntimeUnavailable("connection refused"), always=True)
        await setup.registry.check(host)
        await setup.registry.publish(host)
        now = next(c for c in setup.status("a")["conditions"] if c["type"] == "Ready")
        assert (now["status"], now["lastTransitionTime"]) == ("False", "2026-01-01T12:10:00Z")

    run(scenario())


def test_a_new_controller_keeps_the_transition_time_of_a_host_that_kept_answering() -> None:
    """The Ready condition moves its lastTransitionTime only when its status changes: a controller
    restarting (a new registry) finds the DockerHost Ready since long ago, and it still is."""

    async def scenario() -> None:
        body = host_body("a")
        body["status"] = {
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Reachable",
                    "message": "Docker Engine fake answers",
                    "lastTransitionTime": "2025-12-01T08:00:00Z",
                    "observedGeneration": 1,
                }
            ],
        }
        setup = Setup(body, local_host="")
        await setup.registry.load()
        host = setup.host("a")
        await setup.registry.check(host)
        await setup.registry.publish(host)
        ready = next(c for c in setup.status("a")["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True"
        assert ready["lastTransitionTime"] == "2025-12-01T08:00:00Z"

    run(scenario())


# --- watch events --------------------------------------------------------------------------------------


def test_an_added_docker_host_is_connected_and_driven() -> None:
    async def scenario() -> None:
        setup = Setup(local_host="")
        await setup.registry.load()
        assert setup.names() == []
        body = host_body("new", labels={"zone": "x"})
        setup.kube.docker_hosts["new"] = body
        task = setup.registry.host_event("ADDED", body)
        assert isinstance(task, asyncio.Task)
        await task
        assert setup.names() == ["new"]
        assert setup.connections.endpoints() == ["unix:///run/new.sock"]
        assert setup.host("new").runtime is setup.connections.runtimes[0]
        assert dict(setup.host("new").labels) == {"zone": "x"}

    run(scenario())


def test_an_added_docker_host_named_like_the_implicit_host_replaces_it() -> None:
    async def scenario() -> None:
        setup = Setup()
        await setup.registry.load()
        implicit = setup.runtime("local")
        await setup.registry.host_event("ADDED", host_body("local", endpoint="tcp://there:2376"))
        assert implicit.closed
        assert not setup.host("local").config.implicit
        assert setup.host("local").config.endpoint == "tcp://there:2376"
        assert setup.host("local").bounded

        await setup.registry.host_event("DELETED", host_body("local", endpoint="tcp://there:2376"))
        assert setup.host("local").config.implicit
        assert setup.host("local").config.endpoint is None

    run(scenario())


def test_a_change_of_labels_capacity_or_cordon_keeps_the_connection() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"), local_host="")
        await setup.registry.load()
        host = setup.host("a")
        runtime = setup.runtime("a")
        await setup.registry.check(host)
        host.dirty.clear()

        changed = host_body(
            "a",
            generation=2,
            labels={"zone": "y"},
            unschedulable=True,
            capacity={"cpus": 1, "memoryMiB": 256},
        )
        await setup.registry.host_event("MODIFIED", changed)
        assert len(setup.connections.calls) == 1
        assert setup.host("a") is host
        assert host.runtime is runtime
        assert not runtime.closed
        assert dict(host.labels) == {"zone": "y"}
        assert host.unschedulable
        assert host.capacity() == Resources(1.0, 256)
        assert host.config.generation == 2
        # Still Ready (it answered before) and its status is due for a rewrite.
        assert host.ready
        assert host.dirty.is_set()

    run(scenario())


def test_an_unchanged_docker_host_event_changes_nothing() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"), local_host="")
        await setup.registry.load()
        host = setup.host("a")
        host.dirty.clear()
        await setup.registry.host_event("MODIFIED", host_body("a"))
        assert setup.host("a") is host
        assert len(setup.connections.calls) == 1
        assert not host.dirty.is_set()

    run(scenario())


def test_a_new_endpoint_reconnects_and_closes_the_old_connection() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"), local_host="")
        await setup.registry.load()
        old = setup.runtime("a")
        await setup.registry.host_event("MODIFIED", host_body("a", endpoint="tcp://moved:2375", generation=2))
        assert setup.connections.endpoints() == ["unix:///run/a.sock", "tcp://moved:2375"]
        assert old.closed
        new = setup.runtime("a")
        assert new is setup.connections.runtimes[1]
        assert not new.closed
        # A new connection knows nothing yet.
        assert setup.host("a").answered is None

    run(scenario())


def test_a_deleted_docker_host_is_dropped_and_its_connection_closed() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"), host_body("b"), local_host="")
        await setup.registry.load()
        runtime = setup.runtime("a")
        await setup.registry.host_event("DELETED", host_body("a"))
        assert setup.registry.get("a") is None
        assert setup.names() == ["b"]
        assert runtime.closed
        assert not setup.runtime("b").closed

    run(scenario())


def test_a_docker_host_modified_out_of_the_shard_is_dropped() -> None:
    async def scenario() -> None:
        setup = Setup(
            host_body("a", labels={"shard": "a"}), host_selector=parse_selector("shard=a"), local_host=""
        )
        await setup.registry.load()
        runtime = setup.runtime("a")
        await setup.registry.host_event("MODIFIED", host_body("a", labels={"shard": "b"}))
        assert setup.names() == []
        assert runtime.closed

    run(scenario())


def test_a_docker_host_modified_into_an_invalid_spec_is_dropped() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"), local_host="")
        await setup.registry.load()
        runtime = setup.runtime("a")
        await setup.registry.host_event("MODIFIED", host_body("a", endpoint="ftp://nope"))
        assert setup.names() == []
        assert runtime.closed

    run(scenario())


def test_uncordoning_a_ready_host_wakes_the_workspaces_waiting_for_room() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a", unschedulable=True), local_host="")
        await setup.registry.load()
        await setup.registry.check(setup.host("a"))
        scheduler = setup.registry.scheduler
        waiting = setup.triggers.register("waiting")
        result = await scheduler.place("waiting", scheduler.request(1), Placement())
        assert isinstance(result, Unschedulable)
        assert "a is cordoned" in result.cause.message
        assert not waiting.is_set()

        await setup.registry.host_event("MODIFIED", host_body("a", unschedulable=False))
        assert waiting.is_set()

    run(scenario())


def test_close_closes_every_connection() -> None:
    async def scenario() -> None:
        setup = Setup(host_body("a"))
        await setup.registry.load()
        runtimes = [setup.runtime(name) for name in setup.names()]
        await setup.registry.close()
        assert setup.names() == []
        assert len(runtimes) == 2
        assert all(runtime.closed for runtime in runtimes)

    run(scenario())
