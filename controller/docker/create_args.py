"""A `ContainerSpec` as the arguments of docker-py's low-level `APIClient` (docker 7.1)::

args = create_args(spec, network_id)
host_config = api.create_host_config(**args.host_config)
endpoints = {net: api.create_endpoint_config(**kw) for net, kw in args.endpoints.items()}
networking = api.create_networking_config(endpoints) if endpoints else None
api.create_container(name=args.name, platform=args.platform, host_config=host_config,
                     networking_config=networking, **args.container)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controller.port.values import ContainerSpec

NANOSECONDS = 1_000_000_000


@dataclass(frozen=True)
class CreateArgs:
    name: str
    platform: str | None
    container: dict[str, Any]
    host_config: dict[str, Any]
    endpoints: dict[str, dict[str, Any]]


def create_args(spec: ContainerSpec, network_id: str | None = None) -> CreateArgs:
    """The SDK arguments for `spec`; `network_id` (when given) replaces the network's name.

    Attaching by ID matters: a name that two networks share is ambiguous at start.
    """
    port, _, protocol = spec.exposed_port.partition("/")
    container: dict[str, Any] = {
        "image": spec.image,
        "detach": True,
        "environment": list(spec.env),
        "labels": dict(spec.labels),
        # docker-py turns (port, protocol) into "8000/tcp"; the string form would become "8000/tcp/tcp".
        "ports": [(int(port), protocol or "tcp")],
    }
    if spec.health_check is not None:
        check = spec.health_check
        container["healthcheck"] = {
            "test": ["CMD", *check.test],
            "interval": check.interval_seconds * NANOSECONDS,
            "timeout": check.timeout_seconds * NANOSECONDS,
            "retries": check.retries,
            "start_period": check.start_period_seconds * NANOSECONDS,
        }
    network = (network_id or spec.network) if spec.network else None
    host_config: dict[str, Any] = {
        "binds": list(spec.binds),
        "restart_policy": {"Name": spec.restart_policy},
        "read_only": spec.read_only_rootfs,
        "privileged": spec.privileged,
        "network_mode": network or spec.network_mode,
    }
    if spec.port_bindings:
        # docker-py refuses port bindings together with network_mode "host", so they are only set here.
        bindings: dict[str, list[dict[str, str]]] = {}
        for binding in spec.port_bindings:
            bindings.setdefault(binding.container_port, []).append(
                {"HostIp": binding.host_ip, "HostPort": binding.host_port}
            )
        host_config["port_bindings"] = bindings
    if spec.tmpfs:
        host_config["tmpfs"] = dict(spec.tmpfs)
    if spec.memory:
        host_config["mem_limit"] = spec.memory
    if spec.nano_cpus:
        host_config["nano_cpus"] = spec.nano_cpus
    if spec.pid_mode:
        host_config["pid_mode"] = spec.pid_mode
    if spec.cap_drop:
        host_config["cap_drop"] = list(spec.cap_drop)
    if spec.cap_add:
        host_config["cap_add"] = list(spec.cap_add)
    if spec.security_opt:
        host_config["security_opt"] = list(spec.security_opt)
    if spec.pids_limit:
        host_config["pids_limit"] = spec.pids_limit
    if spec.runtime:
        host_config["runtime"] = spec.runtime
    if spec.dns is not None:
        host_config["dns"] = list(spec.dns)
    if spec.entrypoint is not None:
        container["entrypoint"] = list(spec.entrypoint)
    endpoints: dict[str, dict[str, Any]] = {}
    if network:
        endpoints[network] = {"aliases": list(spec.aliases)}
    return CreateArgs(spec.name, spec.platform, container, host_config, endpoints)
