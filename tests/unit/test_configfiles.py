"""/configs contents: merge order, CRLF handling, config.yaml requirement, and a correct tar."""

from __future__ import annotations

import io
import tarfile

import pytest

from controller.api.workspace import ConfigFile
from controller.core.configfiles import (
    NO_CONFIG_SOURCE_MESSAGE,
    ConfigFilesError,
    build_tar,
    merge_config_files,
    new_auth_token,
    normalise_line_endings,
)

TOKEN = "tok-123"


def merged(
    config_maps: list[dict[str, str | bytes]], inline: list[ConfigFile], token: str = TOKEN
) -> dict[str, bytes]:
    result = merge_config_files(config_maps, inline, token)
    assert isinstance(result, dict), result
    return result


def test_every_config_map_key_becomes_a_file_and_the_token_is_added() -> None:
    files = merged([{"config.yaml": "a: 1", "prompt.md": "hi"}], [])
    assert files == {"config.yaml": b"a: 1", "prompt.md": b"hi", ".auth_token": TOKEN.encode()}


def test_later_config_maps_override_earlier_ones() -> None:
    files = merged([{"config.yaml": "first", "a": "1"}, {"config.yaml": "second"}], [])
    assert files["config.yaml"] == b"second"
    assert files["a"] == b"1"


def test_inline_files_override_config_map_keys_with_the_same_path() -> None:
    files = merged([{"config.yaml": "from-cm"}], [ConfigFile(path="config.yaml", content="inline")])
    assert files["config.yaml"] == b"inline"


def test_binary_config_map_data_is_kept_as_bytes() -> None:
    files = merged([{"config.yaml": "x", "logo.png": b"\x89PNG\r\n"}], [])
    assert files["logo.png"] == b"\x89PNG\r\n"


@pytest.mark.parametrize("path", ["run.sh", "agent.py", "README.md", "skills/a/SKILL.md"])
def test_crlf_becomes_lf_in_scripts_and_markdown(path: str) -> None:
    files = merged(
        [], [ConfigFile(path="config.yaml", content="x"), ConfigFile(path=path, content="a\r\nb\r\n")]
    )
    assert files[path] == b"a\nb\n"


@pytest.mark.parametrize("path", ["config.yaml", "data.txt", "notes.MD"])
def test_other_files_keep_their_line_endings(path: str) -> None:
    assert normalise_line_endings(path, b"a\r\nb") == b"a\r\nb"


def test_lone_carriage_returns_are_not_touched() -> None:
    assert normalise_line_endings("x.sh", b"a\rb\r\n") == b"a\rb\n"


def test_missing_config_yaml_is_no_config_source() -> None:
    result = merge_config_files([{"other": "x"}], [ConfigFile(path="x.md", content="y")], TOKEN)
    assert result == ConfigFilesError("NoConfigSource", NO_CONFIG_SOURCE_MESSAGE)
    assert "no config.yaml source" in NO_CONFIG_SOURCE_MESSAGE


def test_empty_config_yaml_counts_as_missing() -> None:
    result = merge_config_files([{"config.yaml": ""}], [], TOKEN)
    assert isinstance(result, ConfigFilesError)
    assert result.reason == "NoConfigSource"


def test_config_map_may_not_provide_the_token_file() -> None:
    result = merge_config_files([{"config.yaml": "x", ".auth_token": "stolen"}], [], TOKEN)
    assert isinstance(result, ConfigFilesError)
    assert result.reason == "InvalidConfig"


@pytest.mark.parametrize("key", ["..", ".", "a/../b", "/etc/passwd"])
def test_config_map_keys_that_escape_configs_are_refused(key: str) -> None:
    result = merge_config_files([{"config.yaml": "x", key: "y"}], [], TOKEN)
    assert isinstance(result, ConfigFilesError)
    assert result.reason == "InvalidConfig"


def test_empty_token_is_refused() -> None:
    result = merge_config_files([{"config.yaml": "x"}], [], "")
    assert isinstance(result, ConfigFilesError)
    assert result.reason == "InvalidAuthToken"


def test_new_auth_tokens_are_random_shell_safe_and_unpadded() -> None:
    first, second = new_auth_token(), new_auth_token()
    assert first != second
    assert len(first) == 43  # 32 bytes, URL-safe base64 without '='
    assert set(first) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def read_tar(data: bytes) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    entries: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive.getmembers():
            extracted = archive.extractfile(member) if member.isfile() else None
            entries[member.name] = (member, extracted.read() if extracted else b"")
    return entries


def test_tar_sizes_match_contents_after_crlf_stripping() -> None:
    files = merged(
        [], [ConfigFile(path="config.yaml", content="x"), ConfigFile(path="run.sh", content="a\r\n" * 50)]
    )
    entries = read_tar(build_tar(files))
    info, content = entries["run.sh"]
    assert content == b"a\n" * 50
    assert info.size == len(content) == 100
    assert {name: data for name, (_, data) in entries.items() if entries[name][0].isfile()} == files


def test_tar_modes_owner_and_token_privacy() -> None:
    entries = read_tar(build_tar({"config.yaml": b"x", ".auth_token": b"t"}))
    config, _ = entries["config.yaml"]
    token, _ = entries[".auth_token"]
    assert config.mode == 0o644
    assert token.mode == 0o600
    assert (config.uid, config.gid, token.uid, token.gid) == (0, 0, 0, 0)


def test_tar_creates_every_parent_directory_before_its_files() -> None:
    data = build_tar({"skills/a/SKILL.md": b"s", "skills/b.md": b"b", "config.yaml": b"x"})
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
    files = {"b": b"2", "a": b"1", "config.yaml": b"x"}
    assert build_tar(files) == build_tar(dict(reversed(list(files.items()))))
