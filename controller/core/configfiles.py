"""The files of /configs: merged from ConfigMaps and inline files, with the token, as the `FileTree` the
runtime writes into the config volume before the container starts.

The Go provisioner copied these files *after* starting the container, so the agent could read a stale
/configs.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence

from controller.api.workspace import AUTH_TOKEN_FILE, ConfigFile, config_path_problem
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


def new_auth_token() -> str:
    """A fresh bearer token, as the Go provisioner made them: 32 random bytes, unpadded URL-safe base64."""
    return secrets.token_urlsafe(AUTH_TOKEN_BYTES)


def normalise_line_endings(path: str, content: bytes) -> bytes:
    if path.endswith(CRLF_NORMALISED_SUFFIXES):
        return content.replace(b"\r\n", b"\n")
    return content


def merge_config_files(
    config_maps: Sequence[Mapping[str, str | bytes]],
    inline_files: Sequence[ConfigFile],
    auth_token: str,
) -> dict[str, bytes] | Cause:
    """The complete contents of /configs, keyed by relative path.

    ``config_maps`` holds the data (``data`` and decoded ``binaryData``) of spec.config.fromConfigMaps in spec
    order, with missing optional ConfigMaps left out; a later ConfigMap overrides an earlier one's key, and
    inline files override both. The token goes to .auth_token, which no source may provide.
    """
    files: dict[str, bytes] = {}
    for data in config_maps:
        for key, value in data.items():
            problem = config_path_problem(key)
            if problem:
                return Cause(Reason.INVALID_CONFIG, f"ConfigMap key: {problem}")
            files[key] = normalise_line_endings(key, _as_bytes(value))
    for inline in inline_files:
        problem = config_path_problem(inline.path)
        if problem:
            return Cause(Reason.INVALID_SPEC, problem)
        files[inline.path] = normalise_line_endings(inline.path, inline.content.encode("utf-8"))
    if not files.get(CONFIG_FILE):
        return Cause(Reason.NO_CONFIG_SOURCE, NO_CONFIG_SOURCE_MESSAGE)
    if not auth_token:
        return Cause(Reason.INVALID_AUTH_TOKEN, "the workspace auth token is empty")
    files[AUTH_TOKEN_FILE] = auth_token.encode("utf-8")
    return files


def file_mode(path: str) -> int:
    return SECRET_FILE_MODE if path == AUTH_TOKEN_FILE else FILE_MODE


def config_tree(files: Mapping[str, bytes]) -> FileTree:
    """The merged files as written to /configs: the token readable by its owner only."""
    return FileTree(
        root=CONFIG_MOUNT_PATH,
        files={path: File(content, file_mode(path)) for path, content in files.items()},
    )


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")
