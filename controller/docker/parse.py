"""Docker's JSON (containers, volumes, images, networks) parsed into the port's values.

The parsers read the JSON of the Engine API (list and inspect endpoints) and are total: a missing,
null or oddly typed field gives a neutral value (None, "", {}), never an exception, because a
controller that crashes on one malformed object stops reconciling all the others.

A list entry (`GET /containers/json`) is cheap and serves all workspaces in one call, but it does
not carry restart count, OOM kill, start/finish times or the image ID's full config; those fields
are None there and `detail` is False. An inspect (`GET /containers/{id}/json`) fills everything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from controller.core.naming import AGENT_PORT
from controller.docker.uptime import uptime_interval
from controller.port.values import (
    NO_LABELS,
    ContainerState,
    Health,
    HostFacts,
    Labels,
    ObservedContainer,
    ObservedImage,
    ObservedVolume,
)

__all__ = [
    "ObservedNetwork",
    "canonical_network",
    "parse_container_inspect",
    "parse_container_list_entry",
    "parse_image",
    "parse_network",
    "parse_timestamp",
    "parse_volume",
]

_STATES: frozenset[str] = frozenset(
    ("created", "running", "restarting", "exited", "paused", "dead", "removing")
)
_HEALTH: frozenset[str] = frozenset(("starting", "healthy", "unhealthy"))
_LOOPBACK_OR_ANY = ("127.0.0.1", "0.0.0.0", "")  # reading bindings, not binding


ISOLATED_BRIDGE_OPTION = "com.docker.network.bridge.inhibit_ipv4"
"""A bridge network option: the bridge gets no address on the host, so nothing on the network can
reach the host (nor, through it, anything else)."""


@dataclass(frozen=True)
class ObservedNetwork:
    id: str
    name: str
    driver: str = ""
    created: float | None = None
    isolated: bool = False
    """Internal, and without an address on the host (ISOLATED_BRIDGE_OPTION)."""


def parse_container_list_entry(entry: Mapping[str, Any], agent_port: int = AGENT_PORT) -> ObservedContainer:
    """Parse one element of `GET /containers/json?all=1` (`APIClient.containers`)."""
    status_text = _str(entry.get("Status"))
    state = _state(_str(entry.get("State")), status_text)
    return ObservedContainer(
        id=_str(entry.get("Id")),
        name=_first_name(entry.get("Names")),
        image=_str(entry.get("Image")),
        image_id=_str(entry.get("ImageID")),
        labels=_labels(entry.get("Labels")),
        state=state,
        health=_health_from_status(status_text) if state == "running" else None,
        exit_code=_exit_code_from_status(status_text) if state in ("exited", "restarting", "dead") else None,
        host_port=_host_port_from_list(entry.get("Ports"), agent_port),
        created=_number(entry.get("Created")),
        detail=False,
        uptime=uptime_interval(status_text) if state == "running" else None,
    )


def parse_container_inspect(data: Mapping[str, Any], agent_port: int = AGENT_PORT) -> ObservedContainer:
    """Parse `GET /containers/{id}/json` (`APIClient.inspect_container`)."""
    st = _map(data.get("State"))
    config = _map(data.get("Config"))
    state = _state(_str(st.get("Status")), "")
    health = _str(_map(st.get("Health")).get("Status"))
    exit_code = _int(st.get("ExitCode"))
    oom = st.get("OOMKilled")
    return ObservedContainer(
        id=_str(data.get("Id")),
        name=_str(data.get("Name")).lstrip("/"),
        image=_str(config.get("Image")),
        image_id=_str(data.get("Image")),
        labels=_labels(config.get("Labels")),
        state=state,
        # Docker keeps the last verdict after the process ends ("unhealthy" on an exited container).
        health=health if state == "running" and health in _HEALTH else None,  # type: ignore[arg-type]
        exit_code=exit_code if state in ("exited", "restarting", "dead") else None,
        host_port=_host_port_from_inspect(_map(data.get("NetworkSettings")).get("Ports"), agent_port),
        created=_epoch(parse_timestamp(data.get("Created"))),
        detail=True,
        started_at=parse_timestamp(st.get("StartedAt")),
        finished_at=parse_timestamp(st.get("FinishedAt")),
        restart_count=_int(data.get("RestartCount")),
        oom_killed=oom if isinstance(oom, bool) else None,
    )


def parse_network_received(stats: Mapping[str, Any]) -> int | None:
    """Bytes received on every interface Docker reports in a container's stats (it leaves loopback out);
    None when the stats show no network (a stopped container, or `--network none`)."""
    networks = stats.get("networks")
    if not isinstance(networks, Mapping) or not networks:
        return None
    total = 0
    for interface in networks.values():
        received = interface.get("rx_bytes") if isinstance(interface, Mapping) else None
        if isinstance(received, int):
            total += received
    return total


def parse_volume(data: Mapping[str, Any]) -> ObservedVolume:
    """Parse a volume from `GET /volumes` (each of `Volumes`) or `POST /volumes/create`."""
    return ObservedVolume(
        name=_str(data.get("Name")),
        labels=_labels(data.get("Labels")),
        driver=_str(data.get("Driver")),
        created=_epoch(parse_timestamp(data.get("CreatedAt"))),
    )


def parse_image(data: Mapping[str, Any]) -> ObservedImage | None:
    """Parse `GET /images/{name}/json` (or an entry of `GET /images/json`); None when it names no ID."""
    image_id = _str(data.get("Id"))
    if not image_id:
        return None
    return ObservedImage(
        id=image_id,
        repo_digests=_strings(data.get("RepoDigests")),
        # "<none>:<none>" is how an untagged image is listed: no tag.
        repo_tags=tuple(t for t in _strings(data.get("RepoTags")) if t != "<none>:<none>"),
    )


def _strings(value: object) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def parse_network(data: Mapping[str, Any]) -> ObservedNetwork:
    """Parse a network from `GET /networks`."""
    return ObservedNetwork(
        id=_str(data.get("Id")),
        name=_str(data.get("Name")),
        driver=_str(data.get("Driver")),
        created=_epoch(parse_timestamp(data.get("Created"))),
        isolated=data.get("Internal") is True
        and data.get("EnableIPv6") is not True  # an IPv6 bridge address would be a way to the host
        and (data.get("Options") or {}).get(ISOLATED_BRIDGE_OPTION) == "true",
    )


def canonical_network(networks: Iterable[ObservedNetwork], name: str) -> ObservedNetwork | None:
    """The one network every racer agrees on when several share `name`: the oldest, then lowest ID.

    Docker's name filter matches substrings, and creating a network twice concurrently can leave two
    networks with the same name (containers attached to that name then fail to start as ambiguous).
    """
    same_name = [n for n in networks if n.name == name and n.id]
    if not same_name:
        return None
    return min(same_name, key=lambda n: (n.created if n.created is not None else float("inf"), n.id))


_ZERO_TIME_YEAR = 1  # Docker reports "never" as 0001-01-01T00:00:00Z


def parse_timestamp(value: object) -> datetime | None:
    """Parse Docker's RFC 3339 timestamps (nanoseconds allowed); None for missing, zero or garbage."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    # Python keeps microseconds: cut longer fractions ("...03.228904845Z" -> "...03.228904Z").
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.year <= _ZERO_TIME_YEAR:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_STATUS_PREFIXES: tuple[tuple[str, ContainerState], ...] = (
    ("up", "running"),
    ("exited", "exited"),
    ("created", "created"),
    ("restarting", "restarting"),
    ("removal in progress", "removing"),
    ("dead", "dead"),
)


def _state(state: str, status_text: str) -> ContainerState:
    lowered = state.lower()
    if lowered in _STATES:
        return lowered  # type: ignore[return-value]
    # Older engines omit State in list entries; the human status text still says it.
    text = status_text.lower()
    if text.startswith("up") and "(paused)" in text:
        return "paused"
    for prefix, derived in _STATUS_PREFIXES:
        if text.startswith(prefix):
            return derived
    return "unknown"


_HEALTH_IN_STATUS = re.compile(r"\((?:health: )?(starting|healthy|unhealthy)\)")
_CODE_IN_STATUS = re.compile(r"^(?:exited|restarting) \((-?\d+)\)", re.IGNORECASE)


def _health_from_status(status_text: str) -> Health | None:
    match = _HEALTH_IN_STATUS.search(status_text)
    return match.group(1) if match else None  # type: ignore[return-value]


def _exit_code_from_status(status_text: str) -> int | None:
    match = _CODE_IN_STATUS.match(status_text.strip())
    return int(match.group(1)) if match else None


def _host_port_from_list(ports: object, agent_port: int) -> int | None:
    candidates: list[tuple[str, int]] = []
    for item in ports if isinstance(ports, list) else []:
        entry = _map(item)
        if _int(entry.get("PrivatePort")) != agent_port or _str(entry.get("Type")) not in ("tcp", ""):
            continue
        public = _int(entry.get("PublicPort"))
        if public:
            candidates.append((_str(entry.get("IP")), public))
    return _prefer_loopback(candidates)


def _host_port_from_inspect(ports: object, agent_port: int) -> int | None:
    bindings = _map(ports).get(f"{agent_port}/tcp")
    candidates: list[tuple[str, int]] = []
    for item in bindings if isinstance(bindings, list) else []:
        entry = _map(item)
        port = _int(entry.get("HostPort"))
        if port:
            candidates.append((_str(entry.get("HostIp")), port))
    return _prefer_loopback(candidates)


def _prefer_loopback(candidates: list[tuple[str, int]]) -> int | None:
    # A binding on every interface is reachable on 127.0.0.1 too; IPv6-only bindings are not.
    for wanted in _LOOPBACK_OR_ANY:
        for host_ip, port in candidates:
            if host_ip == wanted:
                return port
    return None


def _first_name(names: object) -> str:
    if isinstance(names, list):
        for name in names:
            if isinstance(name, str) and name:
                return name.lstrip("/")
    return ""


def _labels(value: object) -> Labels:
    if not isinstance(value, Mapping):
        return NO_LABELS
    return MappingProxyType({str(k): _label_value(v) for k, v in value.items()})


def _label_value(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def parse_info(data: Mapping[str, Any], api_version: str = "") -> HostFacts:
    """`docker info` (GET /info) as the port's `HostFacts`; missing or odd fields read as empty.
    `api_version` is the one the client negotiated (GET /info does not say it)."""

    def text(key: str) -> str:
        value = data.get(key)
        return value if isinstance(value, str) else ""

    def number(key: str) -> int:
        value = data.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

    runtimes = data.get("Runtimes")
    return HostFacts(
        server_version=text("ServerVersion"),
        api_version=api_version,
        operating_system=text("OperatingSystem"),
        architecture=text("Architecture"),
        cpus=number("NCPU"),
        memory_bytes=number("MemTotal"),
        runtimes=tuple(sorted(str(k) for k in runtimes)) if isinstance(runtimes, Mapping) else (),
    )
