"""A `FileTree` as the tar archive Docker's put-archive endpoint unpacks into a container.

Built in memory, with each header's size taken from the bytes actually written (the Go provisioner
corrupted its tar whenever CRLF stripping shrank a file), parent directories first, root-owned and
deterministic: identical files give identical bytes.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping

from controller.port.values import File

DIRECTORY_MODE = 0o755


def build_tar(files: Mapping[str, File], *, mtime: int = 0) -> bytes:
    """A tar of ``files`` (relative paths) for extraction at their root; entries sorted, stamped ``mtime``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for directory in _parent_directories(files):
            info = _tar_info(directory, mtime)
            info.type = tarfile.DIRTYPE
            info.mode = DIRECTORY_MODE
            archive.addfile(info)
        for path in sorted(files):
            file = files[path]
            info = _tar_info(path, mtime)
            info.mode = file.mode
            info.size = len(file.content)
            archive.addfile(info, io.BytesIO(file.content))
    return buffer.getvalue()


def _parent_directories(files: Mapping[str, File]) -> list[str]:
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
