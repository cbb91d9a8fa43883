"""The egress allow-list of an isolated agent's gateway, and the proxy requests it judges: pure.

A rule is `host:port` (a name matched as written, case aside; an address only as that address) or
`*.domain:port` (any name under the domain, not the domain itself). A request is HTTP/1.1 proxy-style:
`CONNECT host:port` (a tunnel, as for HTTPS), or a request with an absolute `http://` target, which
is sent on to its origin in origin form.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

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
    for rule in parse_rules(",".join(patterns)):
        if rule.port != wanted.port:
            continue
        if wanted.wildcard:
            if rule.wildcard and (wanted.host == rule.host or wanted.host.endswith("." + rule.host)):
                return True
        elif allowed((rule,), wanted.host, wanted.port):
            return True
    return False


def parse_request(head: bytes) -> ProxyRequest | str:
    """A proxy request's head (up to and including the blank line), or why it cannot be served."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        return "unreadable request"
    line, _, rest = text.partition("\r\n")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return "not an HTTP/1.x request"
    method, target, version = parts
    if method == "CONNECT":
        host, sep, port = target.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit():
            return f"CONNECT to {target!r} names no host:port"
        return ProxyRequest(host, int(port), tunnel=True)
    url = urlsplit(target)
    if url.scheme != "http" or not url.hostname:
        return "only CONNECT and absolute http:// requests are proxied"
    try:
        origin_port = url.port or 80
    except ValueError:
        return f"{target!r} has no valid port"
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    # One request per connection: the connection goes to this origin only, so a client that would send
    # its next request (for another host, say) on it is told to open a new one.
    dropped = ("proxy-", "connection:", "keep-alive:")
    headers = [h for h in rest.split("\r\n") if h and not h.lower().startswith(dropped)]
    forward = (
        f"{method} {path} {version}\r\n" + "".join(f"{h}\r\n" for h in headers) + "Connection: close\r\n\r\n"
    )
    return ProxyRequest(url.hostname, origin_port, tunnel=False, forward=forward.encode("latin-1"))


def _name(host: str) -> str:
    return host.strip().rstrip(".").lower()
