"""Socket relays that can make a real server "go away": the Docker daemon, the kube-apiserver.

Stopping the shared engine or the session's control plane would disturb every other test, so a test
puts a relay between the controller and the real server instead, and cuts it. The faults are real
socket behaviour, not a fake API: `go_away()` cuts every open connection and then accepts and
immediately drops new ones (what a client sees while a server restarts); `come_back()` resumes
forwarding. The relay forwards bytes only, so TLS (and mTLS) passes through untouched.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
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
        self._listener.listen(64)
        self._thread = threading.Thread(target=self._accept_loop, name=name, daemon=True)
        self._thread.start()

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
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)
            _close(src)
            _close(dst)


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
