"""Socket relays that can make a real server "go away": the Docker daemon, the kube-apiserver.

Stopping the shared engine or the session's control plane would disturb every other test, so a test
puts a relay between the controller and the real server instead, and cuts it. The faults are real
socket behaviour, not a fake API: `go_away()` cuts every open connection and then accepts and
immediately drops new ones (what a client sees while a server restarts); `come_back()` resumes
forwarding. The relay forwards bytes only, so TLS (and mTLS) passes through untouched.

On the Docker daemon's plain HTTP, `hold(pattern)` also keeps the next request whose request line
matches from reaching the daemon, so a test can stop the controller (SIGKILL) exactly between two of
its steps: everything before happened on the real daemon, the held request never does.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def daemon_socket_path() -> str | None:
    """The engine's unix socket, or None when DOCKER_HOST points somewhere else (tcp, ssh)."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        return "/var/run/docker.sock"
    return host.removeprefix("unix://") if host.startswith("unix://") else None


class Relay:
    """Forwards every connection accepted on `listener` to a new connection made by `connect`."""

    def __init__(self, listener: socket.socket, connect: Callable[[], socket.socket], name: str) -> None:
        self.refused_at: list[float] = []
        """When each connection attempt was dropped while the server was away (monotonic seconds)."""
        self.forwarded = 0
        """How many connections were forwarded to the server."""
        self._connect = connect
        self._away = threading.Event()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener = listener
        self._holds: list[Hold] = []
        self._listener.listen(64)
        self._thread = threading.Thread(target=self._accept_loop, name=name, daemon=True)
        self._thread.start()

    def hold(self, pattern: bytes, *, after: bytes | None = None) -> Hold:
        """Keep the next request matching `pattern` (a regex on its first bytes) from the server; with
        `after`, only once a request matching that was forwarded."""
        hold = Hold(re.compile(pattern), re.compile(after) if after else None)
        with self._lock:
            self._holds.append(hold)
        return hold

    def go_away(self) -> None:
        self._away.set()
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            _close(sock)

    def come_back(self) -> None:
        self._away.clear()

    @property
    def away(self) -> bool:
        return self._away.is_set()

    def close(self) -> None:
        self._closing.set()
        self.go_away()
        _close(self._listener)
        self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._away.is_set():
                self.refused_at.append(time.monotonic())
                _close(client)
                continue
            try:
                upstream = self._connect()
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, upstream))
                self.forwarded += 1
            for src, dst, requests in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, requests), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, requests: bool) -> None:
        try:
            while data := src.recv(65536):
                if requests and self._held(data):
                    return  # never forwarded; the connection closes with the held request
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)
            _close(src)
            _close(dst)

    def _held(self, data: bytes) -> bool:
        with self._lock:
            holds = list(self._holds)
        for hold in holds:
            if hold.after is not None and not hold.armed:
                if hold.after.search(data[:512]):
                    hold.armed = True
                continue
            if hold.pattern.search(data[:512]):
                with self._lock:
                    self._holds.remove(hold)
                hold.reached.set()
                while not hold.released.wait(0.1) and not self._closing.is_set():
                    pass
                return True
        return False


@dataclass
class Hold:
    """One held request: `reached` is set once it arrived (and is being kept from the server)."""

    pattern: re.Pattern[bytes]
    after: re.Pattern[bytes] | None = None
    armed: bool = False
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout: float) -> None:
        if not self.reached.wait(timeout):
            raise AssertionError(f"no request matching {self.pattern.pattern!r} within {timeout}s")


class DaemonRelay(Relay):
    """A unix socket at `path` in front of the Docker daemon's socket `upstream`."""

    def __init__(self, path: Path, upstream: str) -> None:
        self.path = path
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))

        def connect() -> socket.socket:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(upstream)
            except OSError:
                sock.close()
                raise
            return sock

        super().__init__(listener, connect, "daemon-relay")

    @property
    def url(self) -> str:
        """What DOCKER_HOST (or a client's base_url) should be to go through the relay."""
        return f"unix://{self.path}"

    def close(self) -> None:
        super().close()
        self.path.unlink(missing_ok=True)


class TcpRelay(Relay):
    """A loopback TCP port in front of `host:port` (the kube-apiserver, for one controller)."""

    def __init__(self, host: str, port: int) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        self.port: int = listener.getsockname()[1]
        super().__init__(listener, lambda: socket.create_connection((host, port), timeout=10), "tcp-relay")


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already disconnected
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
