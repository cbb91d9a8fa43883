"""The container-runtime port: the seam between the reconcile loop and a container engine.

- `runtime`: `ContainerRuntime`, the Protocol the reconciler, the observer and the orphan sweep use.
- `values`: what crosses it (observed containers, volumes, images and events; the container spec and
  files the reconcile asks for; registry credentials), as frozen values free of any SDK's shapes.
- `errors`: the one failure vocabulary every runtime call raises.

`controller.docker` implements it for the Docker Engine (`controller.docker.connect`); unit tests use an
in-memory fake of it. Nothing here does I/O.
"""
