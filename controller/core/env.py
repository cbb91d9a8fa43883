"""The agent container's environment, in the Go provisioner's order."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from controller.api.workspace import ENV_NAME_PATTERN, RESERVED_ENV_NAMES, reserved_env_name_message
from controller.core.naming import CONFIG_MOUNT_PATH

PLUGINS_DIR = "/plugins"
DEFAULT_PYTHONPATH = "/app"
_ENV_NAME = re.compile(ENV_NAME_PATTERN)


class ReservedEnvNameError(ValueError):
    """A user variable would override one the controller sets."""


def build_container_env(
    *,
    workspace_id: str,
    platform_url: str,
    tier: int,
    awareness: tuple[str, str] | None = None,
    user_env: Sequence[tuple[str, str]] = (),
) -> tuple[str, ...]:
    """``NAME=value`` entries: the controller's variables first, then the user's in spec order.

    PYTHONPATH is the one controller variable a user may override: the user's entry comes later and Docker
    keeps the last duplicate, as with the Go provisioner. Any other reserved name raises
    ReservedEnvNameError; the CRD already rejects them, this guards callers that bypass it. AWARENESS_* are
    set only when both the namespace and the URL are non-empty.
    """
    entries = [
        f"WORKSPACE_ID={workspace_id}",
        f"WORKSPACE_CONFIG_PATH={CONFIG_MOUNT_PATH}",
        f"PLATFORM_URL={platform_url}",
        # MOLECULE_URL is the name newer agents read; it always equals PLATFORM_URL.
        f"MOLECULE_URL={platform_url}",
        f"TIER={tier}",
        # Nothing is mounted at /plugins any more (plugins live under /configs), but agents read the variable.
        f"PLUGINS_DIR={PLUGINS_DIR}",
        f"PYTHONPATH={DEFAULT_PYTHONPATH}",
    ]
    if awareness is not None:
        namespace, url = awareness
        if namespace and url:
            entries += [f"AWARENESS_NAMESPACE={namespace}", f"AWARENESS_URL={url}"]
    for name, value in user_env:
        if name in RESERVED_ENV_NAMES:
            raise ReservedEnvNameError(reserved_env_name_message(name))
        if not _ENV_NAME.fullmatch(name):
            # A name containing '=' would silently define a different variable.
            raise ValueError(f"env name {name!r} is not a valid variable name")
        entries.append(f"{name}={value}")
    return tuple(entries)


def env_index(env: Sequence[str], name: str) -> list[int]:
    """Positions of ``name`` in a ``NAME=value`` list (Docker uses the last one)."""
    prefix = f"{name}="
    return [index for index, entry in enumerate(env) if entry.startswith(prefix)]


def expand_env_from(
    sources: Sequence[tuple[str, str, Mapping[str, str]]], env: Sequence[tuple[str, str]]
) -> tuple[list[tuple[str, str]], list[str]]:
    """spec.envFrom and spec.env as one list of (name, value), and the keys skipped.

    `sources` are (prefix, what, data) in spec order, `what` naming the object for messages ("Secret x").
    As in a Pod: each key becomes <prefix><key>; a later source wins over an earlier one; env wins over
    every source. A key that does not make a variable name, or makes one the controller sets, is skipped
    and named in the second list (never its value). The sources' variables come first, in the order
    they first appear, then env in spec order.
    """
    explicit = {name for name, _ in env}
    merged: dict[str, str] = {}
    skipped: list[str] = []
    for prefix, what, data in sources:
        for key, value in data.items():
            name = prefix + key
            if not _ENV_NAME.fullmatch(name):
                skipped.append(f"{name!r} ({what}): not a variable name")
            elif name in RESERVED_ENV_NAMES:
                skipped.append(f"{name} ({what}): set by the controller")
            elif name not in explicit:
                merged[name] = value
    return [*merged.items(), *env], skipped
