"""A host registry of one host around a given runtime (a fake, or a real adapter in the benchmarks): the
implicit host, asked `docker info` once so that it is Ready, with no background tasks."""

from __future__ import annotations

from controller.docker import TlsFiles
from controller.kube.client import KubeApi
from controller.port.runtime import ContainerRuntime
from controller.reconcile.hosts import Host, HostConfig, HostRegistry
from controller.reconcile.triggers import Triggers
from controller.settings import ControllerSettings


async def one_host(
    runtime: ContainerRuntime, settings: ControllerSettings, kube: KubeApi, triggers: Triggers | None = None
) -> HostRegistry:
    def connect(config: HostConfig, tls: TlsFiles | None) -> ContainerRuntime:
        return runtime

    registry = HostRegistry(
        settings=settings, kube=kube, triggers=triggers or Triggers(), connect=connect, background=False
    )
    await registry.load()
    for host in registry.all():
        await registry.check(host)
    return registry


def the_host(registry: HostRegistry) -> Host:
    (host,) = registry.all()
    return host
