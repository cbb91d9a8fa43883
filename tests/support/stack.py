"""The real local stack for tests: Docker Engine, OCI registries and kube-apiserver + etcd.

Everything is started by the project's own scripts under hack/, the same ones `make run` and CI use.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import docker

REPO = Path(__file__).resolve().parents[2]
HACK = REPO / "hack"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_script(*args: str | Path, env: dict[str, str] | None = None) -> str:
    """Run a hack/ script; its progress goes to stderr (shown by pytest on failure), stdout is returned."""
    result = subprocess.run(
        [str(a) for a in args],
        env={**os.environ, **(env or {})},
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return result.stdout.strip()


def ensure_docker() -> None:
    run_script("bash", HACK / "stack" / "docker.sh", "start")


@dataclass(frozen=True)
class OwnDaemon:
    """A Docker daemon of its own (hack/stack/dockerd.sh), beside the machine's: stopped and started by
    the test that owns it without disturbing anything else."""

    directory: Path  # short: the socket's path must fit a sockaddr_un
    bridge_cidr: str = "10.222.255.1/24"
    flags: tuple[str, ...] = ()
    """More dockerd flags, e.g. a TLS-verified TCP listener beside the socket."""

    @property
    def url(self) -> str:
        return f"unix://{self.directory / 'docker.sock'}"

    def start(self) -> OwnDaemon:
        run_script(
            "bash", HACK / "stack" / "dockerd.sh", "start", self.directory, self.bridge_cidr, *self.flags
        )
        return self

    def stop(self) -> None:
        """SIGTERM and wait until it has exited (it stops its containers first)."""
        run_script("bash", HACK / "stack" / "dockerd.sh", "stop", self.directory)

    def remove(self) -> None:
        """Remove its containers and networks, stop it, delete its bridge (its data directory stays)."""
        run_script("bash", HACK / "stack" / "dockerd.sh", "remove", self.directory)


@dataclass(frozen=True)
class Registry:
    name: str
    address: str  # host:port on loopback
    state_dir: Path
    username: str | None = None
    password: str | None = None

    @property
    def prefix(self) -> str:
        """The registry prefix (MOLECULE_IMAGE_REGISTRY) the test images are pushed under."""
        return f"{self.address}/molecule-ai"

    def image(self, runtime: str, tag: str = "latest") -> str:
        return f"{self.prefix}/workspace-template-{runtime}:{tag}"

    def stop(self) -> None:
        run_script(
            "bash",
            HACK / "stack" / "registry.sh",
            "stop",
            self.name,
            env={"WC_STATE_DIR": str(self.state_dir)},
        )


def start_registry(name: str, state_dir: Path, *, with_auth: bool = False) -> Registry:
    env = {"WC_STATE_DIR": str(state_dir)}
    args: list[str | Path] = ["bash", HACK / "stack" / "registry.sh", "start", name, str(free_port())]
    username = password = None
    if with_auth:
        username, password = "wc-test", secrets.token_urlsafe(12)
        args.append(f"{username}:{password}")
    address = run_script(*args, env=env).splitlines()[-1]
    return Registry(name, address, state_dir, username, password)


def push_test_images(registry: Registry, *, tag: str = "latest", version: str = "v1") -> None:
    """Build the busybox test agent and push it for every runtime under the registry's prefix."""
    login = registry.username is not None
    if login:
        subprocess.run(
            ["docker", "login", "--username", str(registry.username), "--password-stdin", registry.address],
            input=str(registry.password),
            text=True,
            check=True,
            capture_output=True,
        )
    try:
        run_script("bash", HACK / "test-image" / "build.sh", registry.address, "molecule-ai", tag, version)
    finally:
        if login:
            subprocess.run(["docker", "logout", registry.address], check=True, capture_output=True)


@dataclass(frozen=True)
class ControlPlane:
    state_dir: Path
    kubectl: str

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state_dir / "admin.kubeconfig"

    @property
    def controller_kubeconfig(self) -> Path:
        """A non-admin identity: the ServiceAccount workspace-controller/workspace-controller."""
        return self.state_dir / "controller.kubeconfig"

    def stop(self) -> None:
        run_script("bash", HACK / "stack" / "controlplane.sh", "stop", self.state_dir)

    def user_kubeconfig(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig for `user` (in `groups`), with a client certificate signed by this cluster's CA:
        an identity that has only what RBAC grants it."""
        pki = self.state_dir / "pki"
        key, cert = pki / f"{user}.key", pki / f"{user}.crt"
        subject = "".join(f"/O={group}" for group in groups) + f"/CN={user}"
        subprocess.run(
            ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", str(key),
             "-out", str(pki / f"{user}.csr")],
            check=True, capture_output=True,
        )  # fmt: skip
        extensions = pki / f"{user}.ext"
        extensions.write_text("extendedKeyUsage=clientAuth\n")
        subprocess.run(
            ["openssl", "x509", "-req", "-in", str(pki / f"{user}.csr"), "-CA", str(pki / "ca.crt"),
             "-CAkey", str(pki / "ca.key"), "-CAcreateserial", "-days", "1", "-extfile", str(extensions),
             "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        server = next(
            line.split("server:", 1)[1].strip()
            for line in self.admin_kubeconfig.read_text().splitlines()
            if "server:" in line
        )
        path = self.state_dir / f"{user}.kubeconfig"
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: local\n  cluster:\n    server: {server}\n"
            f"    certificate-authority: {pki / 'ca.crt'}\n"
            f"users:\n- name: {user}\n  user:\n    client-certificate: {cert}\n    client-key: {key}\n"
            f"contexts:\n- name: {user}@local\n  context: {{cluster: local, user: {user}}}\n"
            f"current-context: {user}@local\n"
        )
        return path

    def restart(self, which: str) -> None:
        """Stop `apiserver` or `etcd` and start it again: same ports, certificates and data."""
        run_script("bash", HACK / "stack" / "controlplane.sh", "restart", self.state_dir, which)


def start_control_plane(state_dir: Path) -> ControlPlane:
    run_script("bash", HACK / "stack" / "controlplane.sh", "start", state_dir)
    env: dict[str, str] = {}
    for line in (state_dir / "env").read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value
    return ControlPlane(state_dir, env["WC_KUBECTL"])


def publish_image(
    client: docker.DockerClient, source: str, ref: str, *, auth: dict[str, str] | None = None, keep: bool
) -> None:
    """Push the local image ``source`` as ``ref``; unless ``keep``, drop the local tag (a pull is needed)."""
    image = client.images.get(source)
    repository, _, tag = ref.rpartition(":")
    image.tag(repository, tag)
    for line in client.images.push(repository, tag=tag, auth_config=auth, stream=True, decode=True):
        assert "error" not in line, line.get("error")
    if not keep:
        client.images.remove(ref)
