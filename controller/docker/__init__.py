"""The Docker side of the controller: the only code in the project that talks to Docker.

- `adapter`: `DockerAdapter`, the async facade the reconciler uses.
- `observed`: what Docker reports (containers, volumes, networks) as frozen values, and their parsers.
- `events`: the container event stream, followed in a thread and delivered to asyncio.
- `errors`: the classification of every failure into a small hierarchy.
- `executor`: how blocking SDK calls run off the event loop, one client per worker thread.
- `image_refs`, `registry_auth`: image references and pull credentials.
"""
