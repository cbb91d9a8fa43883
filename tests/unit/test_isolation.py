"""Network isolation (spec.network): the plan of an isolated agent and its gateway, the gateway's steps, the
egress allow-list and proxy requests the gateway judges, and the reconciler's passes over the fake
runtime (the Docker side is in tests/e2e/test_network_isolation.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from controller.api.policy import WorkspacePolicySpec
from controller.api.workspace import Network, WorkspaceSpec
from controller.core import labels, naming
from controller.core.causes import Cause, Reason
from controller.core.egress import Rule, allowed, covered, parse_request, parse_rules
from controller.core.identity import WorkspaceRef
from controller.core.isolation import (
    AGENT_ALIAS,
    EGRESS_ALIAS,
    GatewayPlan,
    gateway_name,
    gateway_step,
    internal_network_name,
)
from controller.core.plan import ContainerPlan, ResolvedInputs, plan_workspace
from controller.core.policy import Grant, grant_for, isolation_message, policy_denial
from controller.core.start_first import next_name
from controller.docker.create_args import create_args
from controller.docker.parse import parse_network
from controller.port.errors import ContainerRuntimeError
from controller.port.values import ObservedContainer
from controller.settings import DEFAULT_GATEWAY_IMAGE, ControllerSettings
from tests.unit.test_reconciler import IMAGE, IMAGE_ID, NAME, World

SETTINGS = ControllerSettings(instance="t", registry_prefix="reg.local/m")
REF = WorkspaceRef(uid="5f0c6a52-1b7e-4d0e-9a51-7d3c1f2a9b10", namespace="ns", name="w")
CONFIG = {"files": [{"path": "config.yaml", "content": "model: x\n"}]}
GATEWAY = gateway_name(NAME)
NETWORK = internal_network_name(NAME)


def plan(**spec: Any) -> ContainerPlan:
    result = plan_workspace(
        REF, WorkspaceSpec.model_validate({"config": CONFIG, **spec}), ResolvedInputs(), SETTINGS
    )
    assert isinstance(result, ContainerPlan), result
    return result


# --- the API ---------------------------------------------------------------------------------------


def test_allow_is_given_with_allow_list_and_only_then() -> None:
    Network(egress="AllowList", allow=["api.example.com:443", "*.example.org:443", "10.0.0.5:8080"])
    Network(egress="None")
    for bad in (
        {"egress": "AllowList"},
        {"egress": "None", "allow": ["a.example:1"]},
        {"egress": "Open", "allow": ["a.example:1"]},
        {"egress": "AllowList", "allow": ["https://a.example"]},
        {"egress": "AllowList", "allow": ["A.example:443"]},
        {"egress": "AllowList", "allow": ["a.example:70000"]},
        {"egress": "Closed"},
    ):
        with pytest.raises(ValidationError):
            Network.model_validate(bad)


# --- the plan --------------------------------------------------------------------------------------


def test_an_open_agent_is_planned_as_before_isolation_existed() -> None:
    open_plan, unset = plan(network={"egress": "Open"}), plan()
    assert open_plan.gateway is None
    assert unset.gateway is None
    assert open_plan.config_hash == unset.config_hash  # no recreate on upgrade
    assert unset.container.network == SETTINGS.network
    assert unset.container.port_bindings


def test_an_isolated_agent_is_alone_on_its_internal_network_with_no_port_of_its_own() -> None:
    isolated = plan(network={"egress": "AllowList", "allow": ["api.example.com:443"]})
    agent = isolated.container
    assert agent.network == agent.network_mode == NETWORK
    assert agent.network_internal is True
    assert agent.port_bindings == ()
    assert agent.aliases == (NAME, AGENT_ALIAS)
    assert f"HTTPS_PROXY=http://{EGRESS_ALIAS}:3128" in agent.env
    assert f"https_proxy=http://{EGRESS_ALIAS}:3128" in agent.env
    assert not [e for e in agent.env if e.startswith("http_proxy=")]  # busybox wget: no no_proxy
    assert not isolated.start_first
    assert agent.dns == ("192.0.2.1",)  # no DNS beyond Docker's own resolver
    assert create_args(agent, "net").host_config["dns"] == ["192.0.2.1"]
    # The platform's name for it is the gateway's on the workspace network.
    assert isolated.internal_url == naming.internal_url(REF.uid)


def test_the_gateway_answers_for_the_agent_on_the_workspace_network_and_holds_the_allow_list() -> None:
    isolated = plan(network={"egress": "AllowList", "allow": ["api.example.com:443", "*.example.org:443"]})
    gateway = isolated.gateway
    assert gateway is not None
    spec = gateway.container
    assert spec.name == GATEWAY
    assert spec.image == DEFAULT_GATEWAY_IMAGE
    assert spec.entrypoint == ("workspace-controller-gateway",)
    assert spec.network == SETTINGS.network
    assert spec.aliases == (NAME,)
    assert [b.host_ip for b in spec.port_bindings] == ["127.0.0.1"]
    assert spec.read_only_rootfs
    assert spec.cap_drop == ("ALL",)
    assert not spec.privileged
    assert "WC_GATEWAY_ALLOW=api.example.com:443,*.example.org:443" in spec.env
    assert f"WC_GATEWAY_UPSTREAM={AGENT_ALIAS}:8000" in spec.env
    assert gateway.internal_network == NETWORK
    assert labels.read_config_hash(spec.labels) == gateway.config_hash
    assert labels.read_owner(spec.labels, "t") == REF


def test_egress_none_has_no_proxy_in_the_gateway_nor_in_the_agent() -> None:
    sealed = plan(network={"egress": "None"})
    assert sealed.gateway is not None
    assert not [e for e in sealed.gateway.container.env if e.startswith("WC_GATEWAY_PROXY")]
    assert not [e for e in sealed.container.env if "_PROXY=" in e.upper()]


def test_a_change_of_the_allow_list_changes_the_gateway_not_the_agent() -> None:
    one = plan(network={"egress": "AllowList", "allow": ["a.example:443"]})
    two = plan(network={"egress": "AllowList", "allow": ["b.example:443"]})
    assert one.config_hash == two.config_hash
    assert one.gateway is not None
    assert two.gateway is not None
    assert one.gateway.config_hash != two.gateway.config_hash


@pytest.mark.parametrize(("tier", "why"), [(4, "on the host's network"), (3, "privileged among the host's")])
def test_isolation_of_a_tier_that_could_leave_it_is_a_spec_that_cannot_be_realised(
    tier: int, why: str
) -> None:
    result = plan_workspace(
        REF,
        WorkspaceSpec.model_validate({"config": CONFIG, "tier": tier, "network": {"egress": "None"}}),
        ResolvedInputs(),
        SETTINGS,
    )
    assert isinstance(result, Cause)
    assert result.reason == Reason.INVALID_SPEC
    assert f"tier {tier} runs {why}" in result.message


def test_the_gateway_replaces_the_image_entrypoint() -> None:
    isolated = plan(network={"egress": "None"})
    assert isolated.gateway is not None
    args = create_args(isolated.gateway.container, "net-id")
    assert args.container["entrypoint"] == ["workspace-controller-gateway"]
    assert "entrypoint" not in create_args(isolated.container).container


def test_only_an_internal_network_without_a_host_address_counts_as_isolated() -> None:
    options = {"com.docker.network.bridge.inhibit_ipv4": "true"}
    assert parse_network({"Id": "1", "Name": "n", "Internal": True, "Options": options}).isolated
    assert not parse_network({"Id": "1", "Name": "n", "Internal": True, "Options": {}}).isolated
    assert not parse_network({"Id": "1", "Name": "n", "Internal": False, "Options": options}).isolated


# --- the gateway's steps ---------------------------------------------------------------------------


def observed(state: str = "running", config_hash: str = "h") -> ObservedContainer:
    return ObservedContainer(
        id="g",
        name=GATEWAY,
        image="img",
        image_id="sha256:x",
        labels={labels.CONFIG_HASH_LABEL: config_hash},
        state=state,  # type: ignore[arg-type]
        health=None,
        exit_code=None,
        host_port=40000,
        created=None,
        detail=True,
    )


def gateway_plan(config_hash: str = "h") -> GatewayPlan:
    isolated = plan(network={"egress": "None"})
    assert isolated.gateway is not None
    return GatewayPlan(isolated.gateway.container, NETWORK, config_hash)


@pytest.mark.parametrize(
    ("wanted", "found", "active", "step"),
    [
        (None, None, True, "keep"),
        (None, "running", True, "remove"),
        ("h", "running", False, "remove"),
        ("h", None, False, "keep"),
        ("h", None, True, "create"),
        ("h", "running", True, "keep"),
        ("h2", "running", True, "replace"),
        ("h", "exited", True, "start"),
        ("h", "created", True, "replace"),
        ("h", "dead", True, "replace"),
        ("h", "restarting", True, "keep"),
        ("h", "paused", True, "replace"),
    ],
)
def test_gateway_steps(wanted: str | None, found: str | None, active: bool, step: str) -> None:
    container = observed(found) if found else None
    assert (
        gateway_step(
            gateway_plan(wanted) if wanted else None,
            container,
            active=active,
            config_hash="h" if container else None,
        )
        == step
    )


# --- the allow-list and proxy requests -------------------------------------------------------------


def test_rules_match_names_as_written_and_wildcards_below_their_domain() -> None:
    rules = parse_rules("api.example.com:443,*.example.org:443,10.0.0.5:8080")
    assert rules[1] == Rule("example.org", 443, wildcard=True)
    assert allowed(rules, "api.example.com", 443)
    assert allowed(rules, "API.Example.com.", 443)
    assert not allowed(rules, "api.example.com", 80)
    assert not allowed(rules, "evil-api.example.com", 443)
    assert allowed(rules, "a.example.org", 443)
    assert allowed(rules, "b.a.example.org", 443)
    assert not allowed(rules, "example.org", 443)
    assert not allowed(rules, "example.org.evil.test", 443)
    assert allowed(rules, "10.0.0.5", 8080)
    assert not allowed(rules, "10.0.0.50", 8080)
    assert parse_rules("") == ()
    with pytest.raises(ValueError, match="is not host:port"):
        parse_rules("no-port")


def test_a_connect_request_is_a_tunnel_to_its_host_and_port() -> None:
    request = parse_request(b"CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n")
    assert not isinstance(request, str)
    assert (request.host, request.port, request.tunnel) == ("api.example.com", 443, True)


def test_an_absolute_request_goes_on_in_origin_form_without_proxy_headers() -> None:
    head = (
        b"GET http://peer:8000/health?x=1 HTTP/1.1\r\nHost: peer:8000\r\n"
        b"Proxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n"
    )
    request = parse_request(head)
    assert not isinstance(request, str)
    assert (request.host, request.port, request.tunnel) == ("peer", 8000, False)
    assert request.forward == (
        b"GET /health?x=1 HTTP/1.1\r\nHost: peer:8000\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    # The origin is told the host the check allowed, not one the client names (no fronting).
    fronted = parse_request(b"GET http://peer:8000/ HTTP/1.1\r\nHost: evil.example\r\n\r\n")
    assert not isinstance(fronted, str)
    assert b"evil" not in fronted.forward
    assert fronted.forward.startswith(b"GET / HTTP/1.1\r\nHost: peer:8000\r\n")
    default_port = parse_request(b"GET http://peer/ HTTP/1.0\r\n\r\n")
    assert not isinstance(default_port, str)
    assert default_port.port == 80


@pytest.mark.parametrize(
    "head",
    [
        b"GET /relative HTTP/1.1\r\n\r\n",
        b"GET https://peer/ HTTP/1.1\r\n\r\n",
        b"CONNECT peer HTTP/1.1\r\n\r\n",
        b"garbage\r\n\r\n",
        b"GET http://peer:99999/ HTTP/1.1\r\n\r\n",
        b"GET http://allowed@evil/ HTTP/1.1\r\n\r\n",
        b"GET http://[::1]/ HTTP/1.1\r\n\r\n",
        b"GET http://[::1/ HTTP/1.1\r\n\r\n",
        b"CONNECT a.example.com:4\xb23 HTTP/1.1\r\n\r\n",
        b"CONNECT allowed.com\x0b:443 HTTP/1.1\r\n\r\n",
        b"CONNECT [::1]:443 HTTP/1.1\r\n\r\n",
        b"CONNECT a.example.com:0 HTTP/1.1\r\n\r\n",
    ],
)
def test_what_is_not_a_proxy_request_is_refused_saying_why(head: bytes) -> None:
    assert isinstance(parse_request(head), str)


# --- the passes ------------------------------------------------------------------------------------

ISOLATED = {"network": {"egress": "AllowList", "allow": ["api.example.com:443"]}}


def isolated_world(**spec: Any) -> World:
    return World(
        registry={IMAGE: IMAGE_ID, DEFAULT_GATEWAY_IMAGE: "sha256:" + "9" * 64}, **{**ISOLATED, **spec}
    )


def test_an_isolated_workspace_gets_its_network_and_gateway_and_is_reached_through_it() -> None:
    async def scenario() -> None:
        world = isolated_world()
        await world.reconcile()
        agent = world.container()
        gateway = world.runtime.by_name(GATEWAY)
        assert gateway is not None
        assert gateway.state == "running"
        assert NETWORK in world.runtime.internal_networks
        assert world.runtime.network_labels[NETWORK][labels.UID_LABEL] == REF.uid
        network_id = world.runtime.networks[NETWORK]
        assert gateway.networks_joined == [(network_id, (EGRESS_ALIAS,))]
        assert agent.host_port is None
        assert world.status["endpoint"] == f"http://127.0.0.1:{gateway.host_port}"
        assert world.cond("Ready") == ("True", "ContainerRunning")
        assert "GatewayCreated" in world.kube.reasons()

        mark = world.mark()
        await world.reconcile()
        assert world.writes_since(mark) == []  # settled: nothing more to do

    asyncio.run(scenario())


def test_a_gateway_removed_by_hand_comes_back_and_one_stopped_is_started() -> None:
    async def scenario() -> None:
        world = isolated_world()
        await world.reconcile()
        gateway = world.runtime.by_name(GATEWAY)
        assert gateway is not None
        await world.runtime.stop_container(gateway.id, 0)
        world.observer.touched(GATEWAY)
        await world.reconcile()
        assert gateway.state == "running"
        world.runtime.containers.pop(gateway.id)
        world.observer.touched(GATEWAY)
        await world.reconcile()
        again = world.runtime.by_name(GATEWAY)
        assert again is not None
        assert again.id != gateway.id
        assert again.state == "running"

    asyncio.run(scenario())


def test_suspending_removes_the_gateway_and_resuming_brings_it_back() -> None:
    async def scenario() -> None:
        world = isolated_world()
        await world.reconcile()
        world.change_spec(suspend=True)
        await world.reconcile()
        assert world.runtime.by_name(GATEWAY) is None
        assert world.container().state == "exited"
        world.change_spec(suspend=False)
        await world.reconcile()
        gateway = world.runtime.by_name(GATEWAY)
        assert gateway is not None
        assert gateway.state == "running"
        assert world.status["endpoint"] == f"http://127.0.0.1:{gateway.host_port}"

    asyncio.run(scenario())


def test_turning_isolation_off_recreates_the_agent_on_the_workspace_network_and_removes_the_rest() -> None:
    async def scenario() -> None:
        world = isolated_world()
        await world.reconcile()
        world.body["spec"].pop("network")
        world.body["metadata"]["generation"] += 1
        await world.reconcile()
        agent = world.container()
        assert agent.spec.network == world.settings.network
        assert world.runtime.by_name(GATEWAY) is None
        assert NETWORK not in world.runtime.networks
        assert world.status["endpoint"] == f"http://127.0.0.1:{agent.host_port}"

    asyncio.run(scenario())


def test_deleting_removes_the_gateway_and_the_internal_network() -> None:
    async def scenario() -> None:
        world = isolated_world()
        await world.reconcile()
        await world.finalize()
        assert world.runtime.containers == {}
        assert NETWORK not in world.runtime.networks

    asyncio.run(scenario())


def test_a_gateway_name_held_by_someone_else_stalls_the_workspace() -> None:
    async def scenario() -> None:
        world = isolated_world()
        world.runtime.add_foreign(GATEWAY)
        await world.reconcile()
        assert world.cond("Stalled")[1] == "NameConflict"

    asyncio.run(scenario())


def test_a_gateway_that_cannot_be_made_leaves_the_agent_running_but_not_ready_and_is_tried_again() -> None:
    async def scenario() -> None:
        world = isolated_world()
        world.runtime.fail("connect_network", ContainerRuntimeError("network is being removed"))
        await world.reconcile()
        assert world.container().state == "running"
        assert world.cond("Ready") == ("False", "GatewayNotRunning")
        assert world.cond("Synced")[0] == "False"
        assert "endpoint" not in world.status
        await world.reconcile()
        gateway = world.runtime.by_name(GATEWAY)
        assert gateway is not None
        assert gateway.state == "running"
        assert world.cond("Ready") == ("True", "ContainerRunning")
        assert world.status["endpoint"] == f"http://127.0.0.1:{gateway.host_port}"

    asyncio.run(scenario())


# --- what WorkspacePolicies require ----------------------------------------------------------------


def test_a_policy_entry_covers_the_same_destination_and_names_and_narrower_wildcards_under_its_domain() -> (
    None
):
    patterns = ("*.anthropic.com:443", "platform.internal:8080")
    assert covered("api.anthropic.com:443", patterns)
    assert covered("*.eu.anthropic.com:443", patterns)
    assert covered("*.anthropic.com:443", patterns)
    assert covered("platform.internal:8080", patterns)
    assert not covered("anthropic.com:443", patterns)
    assert not covered("api.anthropic.com:80", patterns)
    assert not covered("*.internal:8080", patterns)
    assert not covered("evil.example:443", patterns)
    assert not covered("api.anthropic.com:443", ())


def grant_of(*policies: dict[str, Any]) -> Grant:
    specs = [(f"p{i}", WorkspacePolicySpec.model_validate(p)) for i, p in enumerate(policies)]
    return grant_for(specs, {"team": "a"})


def denial(grant: Grant, **spec: Any) -> str | None:
    cause = policy_denial(
        WorkspaceSpec.model_validate({"config": CONFIG, **spec}), "ns", grant, "reg.local/m"
    )
    return cause.message if cause is not None else None


def test_a_namespace_that_requires_isolation_refuses_open_agents_and_uncovered_destinations() -> None:
    grant = grant_of(
        {"namespaceSelector": {"matchLabels": {"team": "a"}}, "requireNetworkIsolation": True},
        {"namespaceSelector": {}, "allowedEgress": ["*.anthropic.com:443"]},
    )
    assert grant.require_isolation
    assert denial(grant) == isolation_message("ns")
    assert denial(grant, network={"egress": "Open"}) == isolation_message("ns")
    assert denial(grant, network={"egress": "None"}) is None
    assert denial(grant, network={"egress": "AllowList", "allow": ["api.anthropic.com:443"]}) is None
    message = denial(
        grant, network={"egress": "AllowList", "allow": ["api.anthropic.com:443", "evil.test:443"]}
    )
    assert message is not None
    assert "spec.network.allow names evil.test:443, not allowed in namespace ns" in message
    assert "it may reach *.anthropic.com:443" in message


def test_allowed_egress_alone_constrains_nothing() -> None:
    grant = grant_of({"namespaceSelector": {}, "allowedEgress": ["*.anthropic.com:443"]})
    assert denial(grant) is None
    assert denial(grant, network={"egress": "AllowList", "allow": ["evil.test:443"]}) is None


def test_a_policy_entry_with_a_port_out_of_range_covers_nothing_and_breaks_nothing() -> None:
    assert not covered("api.example.com:443", ("api.example.com:99999", "x.example.com:0"))
    assert covered("api.example.com:443", ("api.example.com:99999", "api.example.com:443"))


def test_turning_isolation_off_under_start_first_keeps_the_gateway_while_the_isolated_agent_serves() -> None:
    async def scenario() -> None:
        world = isolated_world(updateStrategy="StartFirst")
        await world.reconcile()
        world.body["spec"].pop("network")
        world.body["metadata"]["generation"] += 1
        await world.reconcile()
        # The open replacement starts beside the isolated agent, which serves (through its gateway).
        assert world.runtime.by_name(next_name(NAME)) is not None
        gateway = world.runtime.by_name(GATEWAY)
        assert gateway is not None
        assert gateway.state == "running"
        assert world.status["endpoint"] == f"http://127.0.0.1:{gateway.host_port}"

    asyncio.run(scenario())


def test_a_gateway_that_cannot_be_removed_fails_the_pass_as_a_step() -> None:
    async def scenario() -> None:
        world = isolated_world()
        await world.reconcile()
        world.change_spec(suspend=True)
        world.runtime.fail("remove_container", ContainerRuntimeError("device or resource busy"))
        await world.reconcile()
        assert world.cond("Synced")[0] == "False"
        await world.reconcile()
        assert world.runtime.by_name(GATEWAY) is None

    asyncio.run(scenario())
