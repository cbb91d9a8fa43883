"""Every version of a Workspace as `kubectl get --watch` delivers it, stamped with when it arrived.

Polling can miss a status that lasts less than a poll (a container that Docker restarts within
100 ms, a Ready=False that clears on the next pass). A watch sees each write, so a test can say both
*that* the controller reported something and *how soon* after the fault it did.
"""

from __future__ import annotations

import codecs
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.support.kubectl import Kubectl
from tests.support.polling import wait_until


@dataclass(frozen=True)
class Seen:
    at: float
    """Wall-clock time (time.time()) the version arrived: comparable with Docker's event times."""
    obj: Mapping[str, Any]

    @property
    def status(self) -> Mapping[str, Any]:
        return self.obj.get("status") or {}

    @property
    def container(self) -> Mapping[str, Any]:
        return self.status.get("container") or {}

    @property
    def resource_version(self) -> str:
        return str(self.obj["metadata"]["resourceVersion"])

    def condition(self, type_: str) -> Mapping[str, Any]:
        for entry in self.status.get("conditions") or []:
            if entry.get("type") == type_:
                return dict(entry)
        return {}


class WorkspaceWatch:
    """One Workspace's versions; or, with no name, every Workspace's in the namespace."""

    def __init__(self, kubectl: Kubectl, name: str | None) -> None:
        assert kubectl.namespace, "watch a Workspace in a namespace"
        self.name = name or "workspaces"
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            [
                kubectl.binary,
                "--kubeconfig",
                str(kubectl.kubeconfig),
                "--namespace",
                kubectl.namespace,
                "get",
                "workspace",
                *([name] if name else []),
                "--watch",
                "--output",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._thread = threading.Thread(target=self._read, name=f"watch-{name}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        decoder = json.JSONDecoder()
        text = codecs.getincrementaldecoder("utf-8")()
        buffer = ""
        fd = self._proc.stdout.fileno()
        while chunk := os.read(fd, 65536):
            buffer += text.decode(chunk)
            while True:
                stripped = buffer.lstrip()
                if not stripped:
                    buffer = ""
                    break
                try:
                    obj, end = decoder.raw_decode(stripped)
                except ValueError:  # an object split across reads: wait for the rest
                    buffer = stripped
                    break
                objects = obj.get("items", []) if obj.get("kind") == "List" else [obj]
                with self._lock:
                    self._seen.extend(Seen(time.time(), o) for o in objects)
                buffer = stripped[end:]

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def since(self, moment: float) -> list[Seen]:
        return [s for s in self.seen if s.at >= moment]

    @property
    def latest(self) -> Seen:
        return wait_until(
            lambda: self.seen[-1] if self.seen else None, timeout=30, what=f"{self.name} watched"
        )

    def wait_for(
        self, probe: Callable[[Seen], object], *, after: float = 0.0, timeout: float = 60.0, what: str = ""
    ) -> Seen:
        """The first version that arrived at or after `after` and satisfies `probe`."""

        def found() -> Seen | None:
            return next((s for s in self.since(after) if probe(s)), None)

        return wait_until(found, timeout=timeout, interval=0.05, what=f"{self.name}: {what or 'a version'}")

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        self._thread.join(timeout=5)


def ready_at(watch: WorkspaceWatch, names: Mapping[str, float], *, timeout: float) -> dict[str, float]:
    """Seconds from each name's moment (wall clock) until the watch first brought it Ready after it."""

    def all_ready() -> dict[str, float] | None:
        found: dict[str, float] = {}
        for seen in watch.seen:
            name = seen.obj["metadata"]["name"]
            since = names.get(name)
            ready = seen.condition("Ready").get("status") == "True"
            if since is not None and name not in found and ready and seen.at >= since:
                found[name] = seen.at - since
        return found if len(found) == len(names) else None

    result: dict[str, float] = wait_until(
        all_ready, timeout=timeout, interval=0.05, what=f"{sorted(names)} Ready"
    )
    return result


@contextmanager
def watching(kubectl: Kubectl, name: str | None) -> Iterator[WorkspaceWatch]:
    watch = WorkspaceWatch(kubectl, name)
    try:
        yield watch
    finally:
        watch.close()
