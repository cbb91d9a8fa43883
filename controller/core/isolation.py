"""Network isolation of an agent (spec.network): what runs where, and what the pass does about the gateway.

An isolated agent (egress None or AllowList) is the only container on an internal bridge network of its
own that has no address on the Docker host: it has no route to the host, to other agents or beyond,
whatever Docker's iptables setting. Beside it runs a gateway container (the controller's image,
`workspace-controller-gateway`) on two networks:
- the workspace network, under the agent's own name (`ws-<id12>`), and publishing the agent port on
  the host's loopback: the platform and the endpoint reach the agent through it;
- the agent's internal network, as `egress`: with AllowList, an HTTP proxy there (HTTP_PROXY and
  HTTPS_PROXY in the agent) connects only to the listed destinations. With None it offers nothing.

The gateway holds no state: it is removed when the agent is suspended or denied, or isolation is
turned off, and made again from its plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from controller.core.gateway_env import ALLOW_ENV, LISTEN_ENV, PROXY_ENV, UPSTREAM_ENV
from controller.core.labels import ROLE_LABEL
from controller.core.naming import AGENT_PORT, LOOPBACK
from controller.port.values import ContainerSpec, FileTree, ObservedContainer, PortBinding

if TYPE_CHECKING:
    from controller.api.workspace import Network

NO_FILES = FileTree(root="/", files={})
"""What is written into a gateway (nothing: its settings are its environment)."""
GATEWAY_ROLE = "gateway"
AGENT_ALIAS = "wc-agent"
"""The agent's name on its internal network, where the gateway reaches it (its container name would
also resolve to the gateway itself, which answers for it on the workspace network)."""
EGRESS_ALIAS = "egress"
UNROUTED_DNS = "192.0.2.1"
"""The isolated agent's only DNS server beyond Docker's own resolver: TEST-NET-1 (RFC 5737), which no
network routes, so a name Docker's resolver does not know is never asked of anyone."""
PROXY_PORT = 3128
GATEWAY_COMMAND = "workspace-controller-gateway"
GATEWAY_MEMORY = 128 * 2**20
GATEWAY_NANO_CPUS = 500_000_000
GATEWAY_PIDS = 128

GatewayStep = Literal["keep", "create", "replace", "start", "remove"]


def gateway_name(agent: str) -> str:
    return f"{agent}-gw"


def internal_network_name(agent: str) -> str:
    return f"{agent}-isolated"


@dataclass(frozen=True)
class GatewayPlan:
    container: ContainerSpec
    """The gateway as created, on the workspace network; its labels carry `config_hash`."""
    internal_network: str
    """The agent's internal network, which the gateway joins as `egress` before it starts."""
    config_hash: str


def is_isolated(network: Network | None) -> bool:
    return network is not None and network.isolated


def proxy_url() -> str:
    return f"http://{EGRESS_ALIAS}:{PROXY_PORT}"


def agent_proxy_env(network: Network) -> tuple[tuple[str, str], ...]:
    """What tells the agent's HTTP clients to go through the gateway (AllowList only; None has no way
    out at all). Both spellings, as tools read one or the other, but for lower-case `http_proxy`:
    busybox wget reads only that one and ignores no_proxy, so an image's own health check of
    http://127.0.0.1 would be sent to the gateway (curl ignores upper-case HTTP_PROXY, so plain-HTTP
    requests from curl need `-x "$HTTP_PROXY"`; HTTPS, what model APIs speak, goes through for all)."""
    if network.egress != "AllowList":
        return ()
    url = proxy_url()
    no_proxy = f"localhost,{LOOPBACK}"
    return (
        ("HTTP_PROXY", url),
        ("HTTPS_PROXY", url),
        ("https_proxy", url),
        ("NO_PROXY", no_proxy),
        ("no_proxy", no_proxy),
    )


def gateway_container(
    agent: str,
    network: Network,
    *,
    workspace_network: str,
    image: str,
    labels: Mapping[str, str],
    restart_policy: str,
) -> ContainerSpec:
    """The gateway of agent `agent` (without its config-hash label): small, read-only, no capabilities."""
    port = f"{AGENT_PORT}/tcp"
    env = [f"{UPSTREAM_ENV}={AGENT_ALIAS}:{AGENT_PORT}", f"{LISTEN_ENV}={AGENT_PORT}"]
    if network.egress == "AllowList":
        env += [f"{PROXY_ENV}={PROXY_PORT}", f"{ALLOW_ENV}={','.join(network.allow)}"]
    return ContainerSpec(
        name=gateway_name(agent),
        image=image,
        platform=None,
        env=tuple(env),
        labels={**labels, ROLE_LABEL: GATEWAY_ROLE},
        exposed_port=port,
        port_bindings=(PortBinding(port, LOOPBACK),),
        restart_policy=restart_policy,
        network=workspace_network,
        aliases=(agent,),
        binds=(),
        read_only_rootfs=True,
        tmpfs={},
        memory=GATEWAY_MEMORY,
        nano_cpus=GATEWAY_NANO_CPUS,
        privileged=False,
        pid_mode=None,
        network_mode=workspace_network,
        cap_drop=("ALL",),
        cap_add=(),
        security_opt=("no-new-privileges",),
        pids_limit=GATEWAY_PIDS,
        entrypoint=(GATEWAY_COMMAND,),
    )


def is_gateway(labels: Mapping[str, str]) -> bool:
    return labels.get(ROLE_LABEL) == GATEWAY_ROLE


def gateway_step(
    plan: GatewayPlan | None,
    observed: ObservedContainer | None,
    *,
    active: bool,
    config_hash: str | None,
    agent_current: bool = True,
) -> GatewayStep:
    """What the pass does about the gateway: `plan` None (not isolated) or not `active` (the agent is
    suspended or denied) removes one that exists, but not while an isolated agent still serves (not
    `agent_current`: a StartFirst rollout to the open agent is under way, or failed); otherwise it is
    made, replaced when its configuration changed (`config_hash`: the hash label it carries), or
    started when it was stopped."""
    if plan is None and active and not agent_current:
        return "keep"
    if plan is None or not active:
        return "keep" if observed is None else "remove"
    if observed is None:
        return "create"
    if config_hash != plan.config_hash:
        return "replace"
    if observed.state == "exited":  # stopped by hand, or by a daemon going down
        return "start"
    if observed.state in ("created", "dead", "paused"):  # a create that did not finish; paused by hand
        return "replace"
    return "keep"


def tier_message(tier: int) -> str:
    how = (
        "on the host's network"
        if tier >= 4
        else "privileged among the host's processes (it could enter the host's network)"
    )
    return (
        f"spec.network isolates the agent on a network of its own, but tier {tier} runs {how}: use "
        "tier 1 or 2, or egress Open"
    )
