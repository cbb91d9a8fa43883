"""`workspace-controller-gateway`: the gateway in front of an isolated agent (`core.isolation`).

Relays every connection to its listen port (the agent port) to the agent on its internal network, and,
given WC_GATEWAY_PROXY, serves an HTTP proxy there that connects only to what WC_GATEWAY_ALLOW lists
(`core.egress`). Each decision is logged by host and port only: a request's path and headers may hold
credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping

from controller.core.egress import MAX_HEAD, ProxyRequest, Rule, allowed, parse_request, parse_rules
from controller.core.gateway_env import ALLOW_ENV, LISTEN_ENV, PROXY_ENV, UPSTREAM_ENV

log = logging.getLogger("workspace-controller.gateway")

CONNECT_TIMEOUT = 10.0
HEAD_TIMEOUT = 30.0
CHUNK = 64 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def _splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter], b: tuple[asyncio.StreamReader, asyncio.StreamWriter]
) -> None:
    """Bytes both ways until both sides are done; then both are closed."""
    try:
        await asyncio.gather(_pipe(a[0], b[1]), _pipe(b[0], a[1]))
    finally:
        for writer in (a[1], b[1]):
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def _resolve(host: str, port: int) -> str | None:
    """The IPv4 address the connection goes to (the first the resolver gives)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, family=socket.AF_INET, type=socket.SOCK_STREAM
        )
    except OSError:
        return None
    return str(infos[0][4][0]) if infos else None


def _forbidden(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast


async def _open(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)


class Gateway:
    def __init__(self, upstream: tuple[str, int], rules: tuple[Rule, ...]) -> None:
        self._upstream = upstream
        self._rules = rules

    async def relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """An inbound connection, to the agent."""
        try:
            agent = await _open(*self._upstream)
        except (OSError, TimeoutError) as exc:
            log.warning("agent %s:%d does not answer: %s", *self._upstream, exc)
            writer.close()
            return
        await _splice((reader, writer), agent)

    async def proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """An outbound request from the agent, served when the allow-list has its destination."""
        try:
            await self._proxy(reader, writer)
        except Exception:  # one request's failure is never the gateway's
            log.exception("proxying failed")
            writer.close()

    async def _proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            writer.close()
            return
        request = parse_request(head)
        if isinstance(request, str):
            await self._refuse(writer, "400 Bad Request", request)
            return
        where = f"{request.host}:{request.port}"
        if not allowed(self._rules, request.host, request.port):
            log.info("denied %s %s", "CONNECT" if request.tunnel else "request to", where)
            await self._refuse(
                writer, "403 Forbidden", f"egress to {where} is not allowed for this workspace"
            )
            return
        address = await _resolve(request.host, request.port)
        if address is None:
            await self._refuse(writer, "502 Bad Gateway", f"{request.host} does not resolve")
            return
        if request.host != address and _forbidden(address):
            # A name may not lead to what no name should: the gateway's own loopback, link-local
            # addresses (cloud metadata services), ... unless the allow-list names the address itself.
            log.info("denied %s: it resolves to %s", where, address)
            await self._refuse(writer, "403 Forbidden", f"{where} resolves to an address not allowed")
            return
        try:
            origin = await _open(address, request.port)
        except (OSError, TimeoutError) as exc:
            log.info("allowed %s, but it does not answer: %s", where, exc)
            await self._refuse(writer, "502 Bad Gateway", f"{where} does not answer")
            return
        log.info("allowed %s %s", "CONNECT" if request.tunnel else "request to", where)
        await self._forward(request, writer, origin)
        await _splice((reader, writer), origin)

    @staticmethod
    async def _forward(
        request: ProxyRequest,
        writer: asyncio.StreamWriter,
        origin: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        if request.tunnel:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
        else:
            origin[1].write(request.forward)
            await origin[1].drain()

    @staticmethod
    async def _refuse(writer: asyncio.StreamWriter, status: str, message: str) -> None:
        body = (message + "\n").encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(ConnectionError, OSError):
            await writer.drain()
        writer.close()


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host, int(port)


async def serve(env: Mapping[str, str]) -> None:
    upstream = _address(env[UPSTREAM_ENV])
    listen = int(env.get(LISTEN_ENV, "8000"))
    rules = parse_rules(env.get(ALLOW_ENV, ""))
    gateway = Gateway(upstream, rules)
    servers = [await asyncio.start_server(gateway.relay, "0.0.0.0", listen)]
    log.info("relaying :%d to %s:%d", listen, *upstream)
    if env.get(PROXY_ENV):
        proxy_port = int(env[PROXY_ENV])
        servers.append(await asyncio.start_server(gateway.proxy, "0.0.0.0", proxy_port, limit=MAX_HEAD))
        log.info("egress proxy on :%d to %d allowed destinations", proxy_port, len(rules))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    try:
        asyncio.run(serve(os.environ))
    except (KeyError, ValueError) as exc:
        log.error("bad configuration: %s", exc)
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
