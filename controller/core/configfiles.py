"""The files of /configs: merged from ConfigMaps and inline files, with the token, as the `FileTree` the
runtime writes into the config volume before the container starts.

The Go provisioner copied these files *after* starting the container, so the agent could read a stale
/configs.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from controller.api.workspace import AUTH_TOKEN_FILE, ConfigSource, WritePolicy, config_path_problem
from controller.core.causes import Cause, Reason
from controller.core.naming import CONFIG_MOUNT_PATH
from controller.port.values import File, FileTree

CONFIG_FILE = "config.yaml"
# Text files that are executed or parsed by the agent, whose CRLF line endings (from Windows editors) break
# shebangs and heredocs. Other files keep their bytes.
CRLF_NORMALISED_SUFFIXES = (".sh", ".py", ".md")
FILE_MODE = 0o644
SECRET_FILE_MODE = 0o600
AUTH_TOKEN_BYTES = 32
NO_CONFIG_SOURCE_MESSAGE = (
    "no config.yaml source: neither spec.config.files nor spec.config.fromConfigMaps provides config.yaml"
)


@dataclass(frozen=True)
class AuthTokenFile:
    """The token to write to .auth_token, and who owns the file: the Secret the platform handed over
    (Always) or whoever wrote it first (IfNotPresent: a generated token the agent may replace)."""

    value: str = field(repr=False)
    policy: WritePolicy


def new_auth_token() -> str:
    """A fresh bearer token, as the Go provisioner made them: 32 random bytes, unpadded URL-safe base64."""
    return secrets.token_urlsafe(AUTH_TOKEN_BYTES)


def normalise_line_endings(path: str, content: bytes) -> bytes:
    if path.endswith(CRLF_NORMALISED_SUFFIXES):
        return content.replace(b"\r\n", b"\n")
    return content


def merge_config_files(
    config_maps: Sequence[Mapping[str, str | bytes]],
    config: ConfigSource,
    auth_token: AuthTokenFile | None,
) -> dict[str, File] | Cause:
    """The complete contents of /configs, keyed by relative path, each with its mode and write policy.

    ``config_maps`` holds the data (``data`` and decoded ``binaryData``) of spec.config.fromConfigMaps in
    spec order (an empty mapping for a missing optional one); a later ConfigMap overrides an earlier one's
    key, and inline files override both. A file's write policy is that of the source it came from. The
    token goes to .auth_token, which no source may provide; None writes no token.
    """
    files: dict[str, File] = {}
    for data, source in zip(config_maps, config.from_config_maps, strict=True):
        for key, value in data.items():
            problem = config_path_problem(key)
            if problem:
                return Cause(Reason.INVALID_CONFIG, f"ConfigMap key: {problem}")
            files[key] = _file(key, normalise_line_endings(key, _as_bytes(value)), source.write_policy)
    for inline in config.files:
        problem = config_path_problem(inline.path)
        if problem:
            return Cause(Reason.INVALID_SPEC, problem)
        content = normalise_line_endings(inline.path, inline.content.encode("utf-8"))
        files[inline.path] = _file(inline.path, content, inline.write_policy)
    config_file = files.get(CONFIG_FILE)
    if config_file is None or not config_file.content:
        return Cause(Reason.NO_CONFIG_SOURCE, NO_CONFIG_SOURCE_MESSAGE)
    if auth_token is not None:
        if not auth_token.value:
            return Cause(Reason.INVALID_AUTH_TOKEN, "the workspace auth token is empty")
        files[AUTH_TOKEN_FILE] = _file(AUTH_TOKEN_FILE, auth_token.value.encode("utf-8"), auth_token.policy)
    return files


def file_mode(path: str) -> int:
    return SECRET_FILE_MODE if path == AUTH_TOKEN_FILE else FILE_MODE


def config_tree(files: Mapping[str, File]) -> FileTree:
    """The merged files as written to /configs."""
    return FileTree(root=CONFIG_MOUNT_PATH, files=dict(files))


def _file(path: str, content: bytes, policy: WritePolicy) -> File:
    """The token readable by its owner only; IfNotPresent files kept when /configs has them."""
    return File(content, file_mode(path), if_absent=policy == "IfNotPresent")


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")
