"""The files of /configs: merged from ConfigMaps and inline files, and packed as a tar for the config volume.

The Go provisioner copied these files *after* starting the container (so the agent could read a stale
/configs) and corrupted its tar whenever CRLF stripping shrank a file. Here the tar is built in memory, with
each header's size taken from the bytes actually written, and is meant to be copied before the container
starts.
"""

from __future__ import annotations

import io
import secrets
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.api.workspace import AUTH_TOKEN_FILE, ConfigFile, config_path_problem
from controller.core.conditions import Reason

CONFIG_FILE = "config.yaml"
# Text files that are executed or parsed by the agent, whose CRLF line endings (from Windows editors) break
# shebangs and heredocs. Other files keep their bytes.
CRLF_NORMALISED_SUFFIXES = (".sh", ".py", ".md")
FILE_MODE = 0o644
SECRET_FILE_MODE = 0o600
DIRECTORY_MODE = 0o755
AUTH_TOKEN_BYTES = 32
NO_CONFIG_SOURCE_MESSAGE = (
    "no config.yaml source: neither spec.config.files nor spec.config.fromConfigMaps provides config.yaml"
)


@dataclass(frozen=True)
class ConfigFilesError:
    reason: str
    message: str


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
) -> dict[str, bytes] | ConfigFilesError:
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
                return ConfigFilesError(Reason.INVALID_CONFIG, f"ConfigMap key: {problem}")
            files[key] = normalise_line_endings(key, _as_bytes(value))
    for inline in inline_files:
        problem = config_path_problem(inline.path)
        if problem:
            return ConfigFilesError(Reason.INVALID_SPEC, problem)
        files[inline.path] = normalise_line_endings(inline.path, inline.content.encode("utf-8"))
    if not files.get(CONFIG_FILE):
        return ConfigFilesError(Reason.NO_CONFIG_SOURCE, NO_CONFIG_SOURCE_MESSAGE)
    if not auth_token:
        return ConfigFilesError(Reason.INVALID_AUTH_TOKEN, "the workspace auth token is empty")
    files[AUTH_TOKEN_FILE] = auth_token.encode("utf-8")
    return files


def file_mode(path: str) -> int:
    return SECRET_FILE_MODE if path == AUTH_TOKEN_FILE else FILE_MODE


def build_tar(files: Mapping[str, bytes], *, mtime: int = 0) -> bytes:
    """A tar of ``files`` for extraction at /configs: parent directories first, root-owned, deterministic.

    Entries are sorted and stamped with ``mtime`` so identical contents give identical bytes.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for directory in _parent_directories(files):
            info = _tar_info(directory, mtime)
            info.type = tarfile.DIRTYPE
            info.mode = DIRECTORY_MODE
            archive.addfile(info)
        for path in sorted(files):
            content = files[path]
            info = _tar_info(path, mtime)
            info.mode = file_mode(path)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _parent_directories(files: Mapping[str, bytes]) -> list[str]:
    directories: set[str] = set()
    for path in files:
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directories.add("/".join(parts[:depth]))
    # Sorted, a parent ("a") always precedes its children ("a/b").
    return sorted(directories)


def _tar_info(name: str, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = mtime
    return info


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")
