"""A unix-socket relay in front of the Docker daemon that can make the daemon "go away".

Stopping the shared engine would disturb everything else using it, so the tests put this relay
between the adapter and the engine instead. Its faults are real socket behaviour, not a fake API:
`go_away()` cuts every open connection and then accepts and immediately drops new ones (what a
client sees while a daemon restarts); `come_back()` resumes forwarding.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from pathlib import Path


def daemon_socket_path() -> str | None:
    """The engine's unix socket, or None when DOCKER_HOST points somewhere else (tcp, ssh)."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        return "/var/run/docker.sock"
    return host.removeprefix("unix://") if host.startswith("unix://") else None


class DaemonRelay:
    def __init__(self, path: Path, upstream: str) -> None:
        self.path = path
        self.upstream = upstream
        self.refused_at: list[float] = []
        """When each connection attempt was dropped while the daemon was away (monotonic seconds)."""
        self._away = threading.Event()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(64)
        self._thread = threading.Thread(target=self._accept_loop, name="daemon-relay", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def go_away(self) -> None:
        self._away.set()
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            _close(sock)

    def come_back(self) -> None:
        self._away.clear()

    def close(self) -> None:
        self._closing.set()
        self.go_away()
        _close(self._listener)
        self._thread.join(timeout=5)
        self.path.unlink(missing_ok=True)

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
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                upstream.connect(self.upstream)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, upstream))
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


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already disconnected
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
