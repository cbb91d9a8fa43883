"""Every Workspace of a namespace as `kubectl get --watch` reports it: whether Ready holds, and since when.

One line per version (name, generation, Ready's status and observedGeneration, the container's reported
exit code) through a jsonpath template, stamped with its arrival time, so a scenario can say when the last
of N Workspaces became Ready, or how soon after a fault the status said so, from the API server's own
stream rather than from polling.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.support.kubectl import Kubectl

_TEMPLATE = (
    "jsonpath={.metadata.name} {.metadata.generation} "
    '{.status.conditions[?(@.type=="Ready")].status}/'
    '{.status.conditions[?(@.type=="Ready")].observedGeneration} '
    'exit={.status.container.exitCode}{"\\n"}'
)


@dataclass(frozen=True)
class Version:
    at: float  # time.time() the version arrived
    name: str
    ready: bool
    exit_code: str  # status.container.exitCode as written, "" when none


class FleetWatch:
    def __init__(self, kubectl: Kubectl) -> None:
        assert kubectl.namespace, "watch the Workspaces of one namespace"
        self._cond = threading.Condition()
        self._versions: list[Version] = []
        self._ready: dict[str, bool] = {}
        self._proc = subprocess.Popen(
            [kubectl.binary, "--kubeconfig", str(kubectl.kubeconfig), "--namespace", kubectl.namespace,
             "get", "workspaces", "--watch", "--output", _TEMPLATE],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        self._thread = threading.Thread(target=self._read, name="fleet-watch", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            parts = line.split()
            if len(parts) < 2:
                continue
            name, generation = parts[0], parts[1]
            ready = next((p for p in parts[2:] if "/" in p), "")
            exit_code = next((p for p in parts[2:] if p.startswith("exit=")), "exit=")[5:]
            status, _, observed = ready.partition("/")
            version = Version(time.time(), name, status == "True" and observed == generation, exit_code)
            with self._cond:
                self._versions.append(version)
                self._ready[name] = version.ready
                self._cond.notify_all()

    def ready_count(self, names: list[str]) -> int:
        with self._cond:
            return sum(1 for name in names if self._ready.get(name))

    def wait_all_ready(self, names: list[str], *, timeout: float) -> float:
        """Block until every one of `names` is Ready; return when the last one's version arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not all(self._ready.get(name) for name in names):
                left = deadline - time.monotonic()
                if left <= 0:
                    waiting = [n for n in names if not self._ready.get(n)]
                    raise TimeoutError(f"{len(waiting)} of {len(names)} not Ready after {timeout:.0f}s")
                self._cond.wait(min(left, 1.0))
            wanted = set(names)
            return max(v.at for v in self._versions if v.name in wanted and v.ready)

    def wait_version(
        self, name: str, probe: Callable[[Version], bool], *, after: float, timeout: float
    ) -> float | None:
        """When the first version of `name` that satisfies `probe` arrived at or after `after`; None if
        none did within `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = next(
                    (v for v in self._versions if v.at >= after and v.name == name and probe(v)),
                    None,
                )
                if found is not None:
                    return found.at
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 1.0))

    def close(self) -> None:
        self._proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(10)
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)
        self._thread.join(timeout=5)
