"""`kubectl workspace`: a Workspace's container, on whichever Docker host it is, by the Workspace's name.

    kubectl workspace [-n NAMESPACE] [--kubeconfig FILE] [--context NAME] COMMAND NAME [...]

    status NAME              conditions, container, image, endpoints and rollout, readable
    logs NAME [-f] [--tail N]
    exec NAME [-it] -- CMD   a command in the container (interactive with -it: needs the docker CLI)
    url NAME [--internal]    the loopback endpoint (or the URL on the workspace network)
    open NAME                the endpoint in a browser
    restart NAME             a new container (spec.restartRequestedAt)
    reset-session NAME       empty the session volume (spec.session.resetRequestedAt)
    suspend NAME / resume NAME
    wake NAME                start a hibernated workspace (spec.wakeRequestedAt)

Kubernetes is asked through `kubectl` (so contexts, credentials and plugins apply as usual); the container
is found from the Workspace's status (its host and container ID) and reached on that DockerHost's
endpoint, with the TLS files of its Secret, or on DOCKER_HOST for the implicit host. Installed with the
package; `kubectl_complete-workspace` completes commands and Workspace names (kubectl 1.26 or later).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import webbrowser
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.tls

VALUE_FLAGS = ("-n", "--namespace", "--kubeconfig", "--context", "--tail")
COMMANDS = (
    "status",
    "logs",
    "exec",
    "url",
    "open",
    "restart",
    "reset-session",
    "suspend",
    "resume",
    "wake",
)


class PluginError(Exception):
    """Said to the user, without a traceback."""


# --- pure: what the user reads, what is patched -----------------------------------------------------


def summary(obj: dict[str, Any]) -> str:
    """`status`: the Workspace as a few aligned lines."""
    meta, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status") or {}
    lines = [
        f"Workspace {meta.get('namespace')}/{meta.get('name')}  phase {status.get('phase', '-')}  "
        f"runtime {status.get('runtime') or spec.get('runtime', '-')}  "
        f"tier {status.get('tier') or spec.get('tier', '-')}",
    ]
    if status.get("workspaceID"):
        lines.append(f"  workspace ID  {status['workspaceID']}")
    for condition in status.get("conditions", []):
        type_, state, reason = (
            condition.get("type", ""),
            condition.get("status", ""),
            condition.get("reason", ""),
        )
        lines.append(f"  {type_:<12}{state:<8}{reason:<26}{condition.get('message', '')}")
    container = status.get("container") or {}
    if container:
        health = f" ({container['health']})" if container.get("health") else ""
        lines.append(
            f"  container     {container.get('name', '-')}  {str(container.get('id', ''))[:12]}  "
            f"{container.get('state', '-')}{health}  restarts {container.get('restartCount', 0)}"
        )
        lines.append(
            f"  image         {container.get('image', '-')}  {container.get('imageDigest') or ''}".rstrip()
        )
    lines.append(f"  host          {status.get('host', '-')}")
    template = status.get("template") or {}
    if template:
        lines.append(f"  template      {template.get('name')} (generation {template.get('generation')})")
    asleep = (status.get("hibernation") or {}).get("hibernatedAt")
    if asleep:
        lines.append(f"  hibernated    since {asleep} (kubectl workspace wake {meta.get('name')})")
    lines.append(
        f"  endpoint      {status.get('endpoint') or '-'}   internal {status.get('internalURL') or '-'}"
    )
    image = status.get("image") or {}
    if image.get("updateAvailable"):
        lines.append(
            f"  update        {image['updateAvailable']} (spec.imageUpdate.applyRequestedAt applies it)"
        )
    rollout = status.get("rollout") or {}
    if rollout:
        ready = f", Ready {rollout['readyAt']}" if rollout.get("readyAt") else ", not Ready yet"
        config = str(rollout.get("configHash", ""))[:12]
        lines.append(f"  rollout       {config} since {rollout.get('startedAt')}{ready}")
    return "\n".join(lines)


def request_patch(command: str, now: datetime) -> dict[str, Any]:
    """The spec change a command asks for (a fresh token where the controller acts once per token)."""
    token = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patches: dict[str, dict[str, Any]] = {
        "restart": {"restartRequestedAt": token},
        "reset-session": {"session": {"resetRequestedAt": token}},
        "suspend": {"suspend": True},
        "resume": {"suspend": False},
        "wake": {"wakeRequestedAt": token},
    }
    return {"spec": patches[command]}


def completions(args: Sequence[str], names: Sequence[str]) -> list[str]:
    """Candidates for the last of `args` (the word being completed, "" for a new one), as cobra's
    `__complete` protocol asks for them: commands first, then a Workspace name."""
    current = args[-1] if args else ""
    done = _positionals(args[:-1])
    if not done:
        return [c for c in COMMANDS if c.startswith(current)]
    if len(done) == 1 and done[0] in COMMANDS:
        return [n for n in names if n.startswith(current)]
    return []


def _positionals(args: Sequence[str]) -> list[str]:
    found: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in VALUE_FLAGS:
            skip = True
        elif not arg.startswith("-"):
            found.append(arg)
    return found


# --- adapters: kubectl and Docker ----------------------------------------------------------------------


class Kube:
    def __init__(self, namespace: str | None, kubeconfig: str | None, context: str | None) -> None:
        binary = os.environ.get("KUBECTL") or shutil.which("kubectl")
        if binary is None:
            raise PluginError("kubectl is not on PATH (or set KUBECTL)")
        self.base = [binary]
        if kubeconfig:
            self.base += ["--kubeconfig", kubeconfig]
        if context:
            self.base += ["--context", context]
        self.namespace = namespace

    def run(self, *args: str, namespaced: bool = True) -> str:
        cmd = [*self.base, *(["--namespace", self.namespace] if namespaced and self.namespace else []), *args]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise PluginError(result.stderr.strip() or f"kubectl {' '.join(args)} failed")
        return result.stdout

    def json(self, *args: str, namespaced: bool = True) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.run(*args, "-o", "json", namespaced=namespaced))
        return found


class Docker:
    """A client for the Workspace's host, and the flags the docker CLI needs to reach the same daemon."""

    def __init__(self, kube: Kube, workspace: dict[str, Any], scratch: Path) -> None:
        host = (workspace.get("status") or {}).get("host")
        spec: dict[str, Any] = {}
        if host:
            try:
                spec = kube.json("get", "dockerhost", host, namespaced=False).get("spec", {})
            except PluginError:
                spec = {}  # the implicit host (no DockerHost object): this machine's DOCKER_HOST
        endpoint = spec.get("endpoint")
        self.cli = ["docker", *(["--host", endpoint] if endpoint else [])]
        tls = None
        secret_ref = (spec.get("tls") or {}).get("secretRef")
        if secret_ref:
            secret = kube.json(
                "get", "secret", secret_ref["name"], "--namespace", secret_ref["namespace"], namespaced=False
            )
            files = {}
            for key in ("ca.crt", "tls.crt", "tls.key"):
                path = scratch / key
                path.write_bytes(_b64(secret.get("data", {}).get(key, "")))
                path.chmod(0o600)
                files[key] = str(path)
            tls = docker.tls.TLSConfig(
                client_cert=(files["tls.crt"], files["tls.key"]), ca_cert=files["ca.crt"], verify=True
            )
            self.cli += ["--tlsverify", f"--tlscacert={files['ca.crt']}", f"--tlscert={files['tls.crt']}",
                         f"--tlskey={files['tls.key']}"]  # fmt: skip
        self.client = docker.DockerClient(base_url=endpoint, tls=tls) if endpoint else docker.from_env()


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _container_id(workspace: dict[str, Any]) -> str:
    container = (workspace.get("status") or {}).get("container") or {}
    if not container.get("id"):
        name = workspace.get("metadata", {}).get("name")
        raise PluginError(f"workspace {name} has no container (kubectl workspace status {name} says why)")
    return str(container["id"])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubectl workspace", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--namespace")
    parser.add_argument("--kubeconfig")
    parser.add_argument("--context")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        sub = commands.add_parser(name)
        sub.add_argument("name")
        if name == "logs":
            sub.add_argument("-f", "--follow", action="store_true")
            sub.add_argument("--tail", default="all")
        if name == "exec":
            sub.add_argument("-i", "--stdin", action="store_true")
            sub.add_argument("-t", "--tty", action="store_true")
        if name == "url":
            sub.add_argument("--internal", action="store_true")
    return parser


def run(argv: Sequence[str]) -> int:
    argv = list(argv)
    command: list[str] = []
    if "--" in argv:  # exec NAME [-it] -- CMD...: everything after -- is the command, flags included
        at = argv.index("--")
        argv, command = argv[:at], argv[at + 1 :]
    args = _parser().parse_args(argv)
    kube = Kube(args.namespace, args.kubeconfig, args.context)
    workspace = kube.json("get", "workspace", args.name)
    status = workspace.get("status") or {}
    if args.command == "status":
        print(summary(workspace))
        return 0
    if args.command in ("url", "open"):
        url = status.get("internalURL") if getattr(args, "internal", False) else status.get("endpoint")
        if not url:
            raise PluginError(f"workspace {args.name} has no endpoint yet")
        if args.command == "open":
            webbrowser.open(str(url))
        print(url)
        return 0
    if args.command in ("restart", "reset-session", "suspend", "resume", "wake"):
        patch = json.dumps(request_patch(args.command, datetime.now(UTC)))
        kube.run("patch", "workspace", args.name, "--type=merge", "-p", patch)
        print(f"workspace {args.name}: {args.command} requested")
        return 0
    container_id = _container_id(workspace)
    with tempfile.TemporaryDirectory(prefix="kubectl-workspace-") as scratch:
        host = Docker(kube, workspace, Path(scratch))
        if args.command == "logs":
            tail = "all" if args.tail == "all" else int(args.tail)
            output = host.client.api.logs(container_id, stream=args.follow, follow=args.follow, tail=tail)
            for chunk in output if args.follow else [output]:
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
            return 0
        if not command:
            raise PluginError("exec needs a command: kubectl workspace exec NAME -- CMD [ARGS...]")
        if args.stdin or args.tty:
            if shutil.which("docker") is None:
                raise PluginError("an interactive exec needs the docker CLI on PATH")
            flags = [f for f, on in (("-i", args.stdin), ("-t", args.tty)) if on]
            return subprocess.call([*host.cli, "exec", *flags, container_id, *command])
        result = host.client.api.exec_create(container_id, command)
        output = host.client.api.exec_start(result["Id"])
        sys.stdout.buffer.write(output)
        code = host.client.api.exec_inspect(result["Id"]).get("ExitCode")
        return int(code or 0)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except PluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except docker.errors.DockerException as exc:
        print(f"error: the Docker host did not answer: {exc}", file=sys.stderr)
        return 1


def complete(argv: Sequence[str] | None = None) -> int:
    """kubectl's plugin completion (`kubectl_complete-workspace`): candidates, then cobra's directive."""
    args = list(sys.argv[1:] if argv is None else argv)
    namespace = None
    for flag in ("-n", "--namespace"):
        if flag in args[:-2]:
            namespace = args[args.index(flag) + 1]
    names: list[str] = []
    try:
        listing = Kube(namespace, None, None).run("get", "workspaces", "-o", "name")
        names = [line.split("/", 1)[-1] for line in listing.split()]
    except PluginError:
        pass
    for candidate in completions(args, names):
        print(candidate)
    print(":4")  # ShellCompDirectiveNoFileComp
    return 0
