"""kubectl, the one users run, built from the same release as the test kube-apiserver."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class KubectlError(AssertionError):
    pass


@dataclass(frozen=True)
class Kubectl:
    binary: str
    kubeconfig: Path
    namespace: str | None = None

    def in_namespace(self, namespace: str) -> Kubectl:
        return Kubectl(self.binary, self.kubeconfig, namespace)

    def run(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120) -> str:
        cmd = [self.binary, "--kubeconfig", str(self.kubeconfig)]
        if self.namespace:
            cmd += ["--namespace", self.namespace]
        result = subprocess.run([*cmd, *args], input=stdin, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise KubectlError(
                f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}"
            )
        return result.stdout

    def apply(self, manifest: str) -> str:
        return self.run("apply", "-f", "-", stdin=manifest)

    def get_json(self, *args: str) -> Any:
        return json.loads(self.run("get", *args, "-o", "json"))
