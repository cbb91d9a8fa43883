"""The tar Docker's put-archive endpoint receives: sizes from the bytes written, modes, owner, parent
directories first, and the same bytes for the same files."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping

from controller.api.workspace import ConfigFile, ConfigSource
from controller.core.configfiles import AuthTokenFile, config_tree, merge_config_files
from controller.docker.archive import build_tar
from controller.port.values import File

TOKEN = "tok-123"


def plain(files: Mapping[str, bytes]) -> dict[str, File]:
    return {path: File(content) for path, content in files.items()}


def read_tar(data: bytes) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    entries: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive.getmembers():
            extracted = archive.extractfile(member) if member.isfile() else None
            entries[member.name] = (member, extracted.read() if extracted else b"")
    return entries


def test_tar_sizes_match_contents_after_crlf_stripping() -> None:
    files = merge_config_files(
        [],
        ConfigSource(
            files=(
                ConfigFile(path="config.yaml", content="x"),
                ConfigFile(path="run.sh", content="a\r\n" * 50),
            )
        ),
        AuthTokenFile(TOKEN, "Always"),
    )
    assert isinstance(files, dict), files
    entries = read_tar(build_tar(config_tree(files).files))
    info, content = entries["run.sh"]
    assert content == b"a\n" * 50
    assert info.size == len(content) == 100
    written = {name: data for name, (_, data) in entries.items() if entries[name][0].isfile()}
    assert written == {path: file.content for path, file in files.items()}


def test_tar_modes_owner_and_token_privacy() -> None:
    files = merge_config_files(
        [], ConfigSource(files=(ConfigFile(path="config.yaml", content="x"),)), AuthTokenFile("t", "Always")
    )
    assert isinstance(files, dict), files
    entries = read_tar(build_tar(config_tree(files).files))
    config, _ = entries["config.yaml"]
    token, _ = entries[".auth_token"]
    assert config.mode == 0o644
    assert token.mode == 0o600
    assert (config.uid, config.gid, token.uid, token.gid) == (0, 0, 0, 0)


def test_tar_creates_every_parent_directory_before_its_files() -> None:
    data = build_tar(plain({"skills/a/SKILL.md": b"s", "skills/b.md": b"b", "config.yaml": b"x"}))
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = archive.getmembers()
    names = [m.name for m in members]
    assert names[:2] == ["skills", "skills/a"]
    directories = [m for m in members if m.isdir()]
    assert [d.name for d in directories] == ["skills", "skills/a"]
    assert all(d.mode == 0o755 for d in directories)
    for member in members:
        parent = member.name.rpartition("/")[0]
        if parent:
            assert names.index(parent) < names.index(member.name)


def test_tar_is_deterministic() -> None:
    files = plain({"b": b"2", "a": b"1", "config.yaml": b"x"})
    assert build_tar(files) == build_tar(dict(reversed(list(files.items()))))
