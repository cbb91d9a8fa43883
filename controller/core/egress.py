"""The egress allow-list of an isolated agent's gateway, and the proxy requests it judges: pure.

A rule is `host:port` (a name matched as written, case aside; an address only as that address) or
`*.domain:port` (any name under the domain, not the domain itself). A request is HTTP/1.1 proxy-style:
`CONNECT host:port` (a tunnel, as for HTTPS), or a request with an absolute `http://` target, which
is sent on to its origin in origin form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MAX_HEAD = 16 * 1024
"""The most bytes a proxy request's head may take (request line and headers)."""


@dataclass(frozen=True)
class Rule:
    host: str
    """A lower-case name or address; for a wildcard, the domain (without `*.`)."""
    port: int
    wildcard: bool = False


@dataclass(frozen=True)
class ProxyRequest:
    host: str
    port: int
    tunnel: bool
    """CONNECT: answer 200 and relay bytes. Otherwise send `forward` (the head in origin form) on."""
    forward: bytes = b""


def parse_rules(raw: str) -> tuple[Rule, ...]:
    """`host:port,*.domain:port,...` as the controller writes it (WC_GATEWAY_ALLOW); raises ValueError."""
    rules = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        host, sep, port = entry.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"{entry!r} is not host:port")
        wildcard = host.startswith("*.")
        rules.append(Rule(_name(host[2:] if wildcard else host), int(port), wildcard))
    return tuple(rules)


def allowed(rules: tuple[Rule, ...], host: str, port: int) -> bool:
    name = _name(host)
    for rule in rules:
        if rule.port != port:
            continue
        if rule.wildcard and name.endswith("." + rule.host):
            return True
        if not rule.wildcard and name == rule.host:
            return True
    return False


def covered(destination: str, patterns: Iterable[str]) -> bool:
    """Whether one of `patterns` (policy entries, as rules) covers an allow-list entry: the same
    host:port, or a wildcard whose domain the entry's name (or narrower wildcard) is under."""
    (wanted,) = parse_rules(destination)
    rules: list[Rule] = []
    for pattern in patterns:
        try:
            rules.extend(parse_rules(pattern))
        except ValueError:  # the schema lets a port out of range through: such an entry covers nothing
            continue
    for rule in rules:
        if rule.port != wanted.port:
            continue
        if wanted.wildcard:
            if rule.wildcard and (wanted.host == rule.host or wanted.host.endswith("." + rule.host)):
                return True
        elif allowed((rule,), wanted.host, wanted.port):
            return True
    return False


def parse_request(head: bytes) -> ProxyRequest | str:
    """A proxy request's head (up to and including the blank line), or why it cannot be served. The host
    is a DNS name or an IPv4 address (lower case, one trailing dot dropped) and the port 1-65535; the
    request sent on names its origin in its Host header, whatever the client's said."""
    text = head.decode("latin-1")
    line, _, rest = text.partition("\r\n")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return "not an HTTP/1.x request"
    method, target, version = parts
    if method == "CONNECT":
        host, _, port = target.rpartition(":")
        destination = _destination(host, port)
        if destination is None:
            return f"CONNECT to {target[:100]!r} names no host:port"
        return ProxyRequest(*destination, tunnel=True)
    if not target.startswith("http://"):
        return "only CONNECT and absolute http:// requests are proxied"
    authority, slash, remainder = target[len("http://") :].partition("/")
    if "@" in authority:
        return "a request naming credentials in its URL is not proxied"
    host, _, port = authority.rpartition(":") if ":" in authority else (authority, "", "80")
    destination = _destination(host, port)
    if destination is None:
        return f"{target[:100]!r} names no host and port"
    path = (slash + remainder.partition("#")[0]) or "/"
    # One request per connection: the connection goes to this origin only, so a client that would send
    # its next request (for another host, say) on it is told to open a new one.
    dropped = ("proxy-", "connection:", "keep-alive:", "host:")
    headers = [h for h in rest.split("\r\n") if h and not h.lower().startswith(dropped)]
    origin = destination[0] if destination[1] == 80 else f"{destination[0]}:{destination[1]}"
    forward = (
        f"{method} {path} {version}\r\nHost: {origin}\r\n"
        + "".join(f"{h}\r\n" for h in headers)
        + "Connection: close\r\n\r\n"
    )
    return ProxyRequest(*destination, tunnel=False, forward=forward.encode("latin-1"))


def _destination(host: str, port: str) -> tuple[str, int] | None:
    name = _name(host)
    if not _HOST.fullmatch(name) or not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535:
        return None
    return name, int(port)


_HOST = re.compile(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")


def _name(host: str) -> str:
    return host.removesuffix(".").lower()
