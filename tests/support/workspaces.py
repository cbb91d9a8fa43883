"""Helpers for end-to-end tests of the Workspace reconcile: manifests, a per-test harness, the agent's view.

A `WorkspaceHarness` bundles what one test uses: kubectl in the test's namespace, the Docker client and
the controllers it started. The controllers watch the whole cluster, as deployed (a namespaced kopf first
tries to list namespaces, which the controller's RBAC rightly forbids, and only falls back after a long
retry). So that a controller sees no Workspace of an earlier test, `cleanup` stops the test's controllers,
removes every Docker object their instance label marks, and deletes the test's Workspaces (dropping the
finalizer no controller is left to run): nothing a test created outlives it.

The test agent answers over its published port: `/cgi-bin/env` (its environment), `/cgi-bin/configs`
(the files under /configs) and `/version` (the VERSION its image was built with).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import docker
import yaml
from docker.models.containers import Container
from docker.models.volumes import Volume

from tests.support.controller_process import ControllerProcess
from tests.support.kubectl import Kubectl
from tests.support.polling import wait_until

API_VERSION = "molecule.ai/v1alpha1"
MANAGED_LABEL = "molecule.platform.managed"
INSTANCE_LABEL = "molecule.ai/controller-instance"
UID_LABEL = "molecule.ai/workspace-uid"
NAMESPACE_LABEL = "molecule.ai/workspace-namespace"
NAME_LABEL = "molecule.ai/workspace-name"
CONFIG_HASH_LABEL = "molecule.ai/config-hash"
DELETION_POLICY_LABEL = "molecule.ai/deletion-policy"
NETWORK = "molecule-monorepo-net"
FLUX_REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

# Deadlines. A workspace is normally Ready within a few seconds of its controller starting; these bound
# a failure, they are not how long anything takes.
READY_TIMEOUT = 90.0
CHANGE_TIMEOUT = 60.0


# --- manifests ------------------------------------------------------------------------------------------


def default_config(name: str) -> dict[str, Any]:
    return {"files": [{"path": "config.yaml", "content": f"name: {name}\nruntime: langgraph\n"}]}


def workspace_manifest(
    name: str,
    spec: Mapping[str, Any] | None = None,
    *,
    annotations: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> str:
    """A Workspace as YAML. Without ``config`` in ``spec`` it gets an inline config.yaml."""
    body: dict[str, Any] = dict(spec or {})
    body.setdefault("config", default_config(name))
    metadata: dict[str, Any] = {"name": name}
    if annotations:
        metadata["annotations"] = dict(annotations)
    if labels:
        metadata["labels"] = dict(labels)
    return yaml.safe_dump(
        {"apiVersion": API_VERSION, "kind": "Workspace", "metadata": metadata, "spec": body}
    )


def policy_manifest(name: str, match_labels: Mapping[str, str], **spec: Any) -> str:
    """A WorkspacePolicy granting the namespaces with `match_labels` what `spec` says."""
    body = {"namespaceSelector": {"matchLabels": dict(match_labels)}, **spec}
    return yaml.safe_dump(
        {"apiVersion": API_VERSION, "kind": "WorkspacePolicy", "metadata": {"name": name}, "spec": body}
    )


def secret_manifest(name: str, data: Mapping[str, str], *, type_: str = "Opaque") -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "type": type_,
            "stringData": dict(data),
        }
    )


def config_map_manifest(name: str, data: Mapping[str, str]) -> str:
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data)}
    )


def docker_config_secret_manifest(name: str, registry: str, username: str, password: str) -> str:
    """A kubernetes.io/dockerconfigjson Secret granting ``username`` access to ``registry``."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    document = {"auths": {registry: {"username": username, "password": password, "auth": auth}}}
    return secret_manifest(
        name, {".dockerconfigjson": json.dumps(document)}, type_="kubernetes.io/dockerconfigjson"
    )


# --- reading Workspaces -------------------------------------------------------------------------------


def docker_host_manifest(
    name: str, endpoint: str, *, labels: Mapping[str, str] | None = None, **spec: Any
) -> str:
    body = {
        "apiVersion": "molecule.ai/v1alpha1",
        "kind": "DockerHost",
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": {"endpoint": endpoint, **spec},
    }
    return json.dumps(body)


def condition(obj: Mapping[str, Any], type_: str) -> dict[str, Any] | None:
    for entry in (obj.get("status") or {}).get("conditions") or []:
        if entry.get("type") == type_:
            return dict(entry)
    return None


def is_ready(obj: Mapping[str, Any]) -> bool:
    ready = condition(obj, "Ready")
    return bool(
        ready
        and ready["status"] == "True"
        and ready.get("observedGeneration") == obj["metadata"]["generation"]
    )


def stalled_reason(obj: Mapping[str, Any]) -> str | None:
    stalled = condition(obj, "Stalled")
    return str(stalled["reason"]) if stalled and stalled["status"] == "True" else None


def fingerprint(secret: str) -> str:
    """What a test may show of a secret value: a digest (assertion messages never print the value)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


# --- the test agent's own view ------------------------------------------------------------------------


def agent_get(endpoint: str, path: str, *, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(f"{endpoint}{path}", timeout=timeout) as response:
        body: bytes = response.read()
        return body


def agent_env(endpoint: str) -> dict[str, str]:
    """The agent process's environment (order not meaningful; see `container_env` for the order)."""
    env: dict[str, str] = {}
    for line in agent_get(endpoint, "/cgi-bin/env").decode().splitlines():
        name, sep, value = line.partition("=")
        if sep:
            env[name] = value
    return env


@dataclass(frozen=True)
class AgentFile:
    mode: str  # octal, as `stat -c %a` prints it
    size: int
    content: bytes


def agent_configs(endpoint: str) -> dict[str, AgentFile]:
    """Every file under /configs as the agent sees it: ``== <path> <mode> <size>``, then the content."""
    data = agent_get(endpoint, "/cgi-bin/configs")
    files: dict[str, AgentFile] = {}
    pos = 0
    while pos < len(data):
        end = data.index(b"\n", pos)
        header = data[pos:end].decode()
        assert header.startswith("== "), f"unexpected line in /cgi-bin/configs: {header[:80]!r}"
        path, mode, size = header[3:].rsplit(" ", 2)
        start = end + 1
        files[path] = AgentFile(mode, int(size), data[start : start + int(size)])
        pos = start + int(size) + 1  # the separating newline
    return files


def agent_version(endpoint: str) -> str:
    return agent_get(endpoint, "/version").decode().strip()


def wait_agent(endpoint: str, timeout: float = 30.0) -> None:
    wait_until(lambda: agent_get(endpoint, "/health").strip() == b"ok", timeout=timeout, what="agent /health")


# --- Docker's view -------------------------------------------------------------------------------------


def container_env(container: Container) -> list[str]:
    """Config.Env as the controller created it, in order: Docker appends the image's own variables (PATH)
    after the ones it was given, and those are left out here."""
    image_env = set(container.image.attrs["Config"].get("Env") or [])
    return [entry for entry in container.attrs["Config"]["Env"] or [] if entry not in image_env]


def env_names(entries: Sequence[str]) -> list[str]:
    return [entry.partition("=")[0] for entry in entries]


def exec_sh(container: Container, script: str) -> str:
    result = container.exec_run(["/bin/sh", "-c", script])
    output = result.output.decode(errors="replace")
    assert result.exit_code == 0, f"`{script}` exited {result.exit_code}: {output}"
    return str(output)


def containers_of(client: docker.DockerClient, uid: str) -> list[Container]:
    """Every container (any state, any controller instance) carrying the workspace uid label."""
    found: list[Container] = client.containers.list(all=True, filters={"label": f"{UID_LABEL}={uid}"})
    return found


def container_of(client: docker.DockerClient, uid: str) -> Container:
    """The one container of a workspace; fails if there is none or more than one."""
    found = containers_of(client, uid)
    assert len(found) == 1, f"expected one container for workspace {uid}, found {[c.name for c in found]}"
    return found[0]


def volumes_of(client: docker.DockerClient, uid: str) -> dict[str, Volume]:
    found: list[Volume] = client.volumes.list(filters={"label": f"{UID_LABEL}={uid}"})
    return {v.name: v for v in found}


def short_id(uid: str) -> str:
    return uid[:12]


# --- the per-test harness -----------------------------------------------------------------------------


@dataclass
class WorkspaceHarness:
    kubectl: Kubectl  # in the test's namespace, as cluster admin
    namespace: str
    docker: docker.DockerClient
    start: Callable[..., ControllerProcess]
    controllers: list[ControllerProcess] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)

    def start_controller(self, *args: str, **env: str) -> ControllerProcess:
        """A controller process; arguments are its command line, keyword arguments settings (env)."""
        proc = self.start(*args, **env)
        self.controllers.append(proc)
        return proc

    @property
    def instance(self) -> str:
        assert self.controllers, "no controller started"
        return self.controllers[0].env["WC_INSTANCE"]

    def controller_logs(self) -> str:
        return "".join(proc.logs() for proc in self.controllers)

    # Docker hosts

    def add_host(
        self, name: str, endpoint: str, *, labels: Mapping[str, str] | None = None, **spec: Any
    ) -> str:
        """A DockerHost (cluster-scoped: deleted after the test), with a unique name made from `name`."""
        unique = f"{name}-{secrets.token_hex(3)}"
        self.hosts.append(unique)
        self.apply(docker_host_manifest(unique, endpoint, labels=labels, **spec))
        return unique

    def get_host(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.kubectl.get_json("dockerhost", name)
        return obj

    # grants

    def grant(self, name: str = "", **spec: Any) -> str:
        """A WorkspacePolicy granting this test's namespace `spec` (its camelCase fields: tiers, hostPaths,
        images, dockerSocket), selected by the namespace's own `kubernetes.io/metadata.name` label."""
        policy = name or f"{self.namespace}-{len(self.policies)}"
        self.kubectl.apply(policy_manifest(policy, {NAMESPACE_NAME_LABEL: self.namespace}, **spec))
        if policy not in self.policies:
            self.policies.append(policy)
        return policy

    def withdraw(self, policy: str) -> None:
        self.kubectl.run("delete", "workspacepolicy", policy)

    # kubectl

    def apply(self, manifest: str) -> None:
        self.kubectl.apply(manifest)

    def get(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.kubectl.get_json("workspace", name)
        return obj

    def uid(self, name: str) -> str:
        return str(self.get(name)["metadata"]["uid"])

    def patch_spec(self, name: str, spec: Mapping[str, Any]) -> None:
        self.kubectl.run("patch", "workspace", name, "--type=merge", "-p", json.dumps({"spec": dict(spec)}))

    def wait_ready(self, name: str, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
        """`kubectl wait --for=condition=Ready`, as a user would, then the Workspace as it is now."""
        self.kubectl.run(
            "wait",
            "--for=condition=Ready",
            f"--timeout={int(timeout)}s",
            f"workspace/{name}",
            timeout=timeout + 30,
        )
        return self.get(name)

    def wait_for(
        self, name: str, probe: Callable[[dict[str, Any]], Any], what: str, timeout: float = CHANGE_TIMEOUT
    ) -> dict[str, Any]:
        """Poll the Workspace until ``probe`` holds; return it."""

        def check() -> dict[str, Any] | None:
            obj = self.get(name)
            return obj if probe(obj) else None

        return wait_until(check, timeout=timeout, interval=0.2, what=f"{name}: {what}")

    def wait_stalled(self, name: str, reason: str, timeout: float = CHANGE_TIMEOUT) -> dict[str, Any]:
        """The Stalled condition once it is True with ``reason`` for the current generation."""

        def stalled(obj: dict[str, Any]) -> bool:
            cond = condition(obj, "Stalled")
            return bool(
                cond
                and cond["status"] == "True"
                and cond["reason"] == reason
                and cond.get("observedGeneration") == obj["metadata"]["generation"]
            )

        obj = self.wait_for(name, stalled, f"Stalled with reason {reason}", timeout)
        found = condition(obj, "Stalled")
        assert found is not None
        return found

    def sync(self, name: str, token: str) -> dict[str, Any]:
        """Ask for one more reconcile (Flux's requestedAt annotation) and wait until it was handled.

        What the controller did (or did not do) before that is then settled: no sleeping to find out.
        """
        self.kubectl.run("annotate", "--overwrite", "workspace", name, f"{FLUX_REQUESTED_AT}={token}")
        return self.wait_for(
            name,
            lambda obj: (obj.get("status") or {}).get("lastHandledReconcileAt") == token,
            f"reconcile request {token} handled",
        )

    def describe(self, name: str) -> str:
        return self.kubectl.run("describe", "workspace", name)

    def events(self, name: str) -> list[dict[str, Any]]:
        listed = self.kubectl.get_json("events", "--field-selector", f"involvedObject.name={name}")
        return list(listed.get("items") or [])

    def event_reasons(self, name: str) -> list[str]:
        return [str(event.get("reason")) for event in self.events(name)]

    def wait_event(self, name: str, reason: str, timeout: float = CHANGE_TIMEOUT) -> list[dict[str, Any]]:
        return wait_until(
            lambda: [e for e in self.events(name) if e.get("reason") == reason],
            timeout=timeout,
            what=f"event {reason} for {name}",
        )

    # Docker

    def container(self, name: str) -> Container:
        return container_of(self.docker, self.uid(name))

    def containers(self, name: str) -> list[Container]:
        return containers_of(self.docker, self.uid(name))

    def wait_container(self, uid: str, timeout: float = CHANGE_TIMEOUT) -> Container:
        found = wait_until(
            lambda: containers_of(self.docker, uid), timeout=timeout, what=f"container of {uid}"
        )
        assert len(found) == 1, [c.name for c in found]
        return found[0]

    def cleanup(self) -> None:
        """Stop this test's controllers, then remove whatever Docker objects their instance labelled."""
        for proc in self.controllers:
            proc.stop()
        for instance in {proc.env["WC_INSTANCE"] for proc in self.controllers}:
            selector = {"label": [f"{MANAGED_LABEL}=true", f"{INSTANCE_LABEL}={instance}"]}
            for container in self.docker.containers.list(all=True, filters=selector):
                container.remove(force=True, v=True)
            for volume in self.docker.volumes.list(filters=selector):
                volume.remove(force=True)
            for network in self.docker.networks.list(filters=selector):
                network.remove()
        # A pool left behind would have the next test's controller make warm slots for it (and pull).
        self.kubectl.run("delete", "workspacepools", "--all", "--wait=false")
        for policy in self.policies:
            self.kubectl.run("delete", "--ignore-not-found", "workspacepolicy", policy)
        for host in self.hosts:
            self.kubectl.run("delete", "--ignore-not-found", "dockerhost", host)
        names = self.kubectl.run("get", "workspaces", "-o", "name").split()
        for name in names:
            self.kubectl.run("patch", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
        if names:
            self.kubectl.run("delete", "--wait=false", *names)
