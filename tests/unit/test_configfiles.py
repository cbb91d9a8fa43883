"""/configs contents: merge order, CRLF handling, config.yaml requirement, and the modes they are written
with (the tar Docker receives is tested in test_docker_archive.py)."""

from __future__ import annotations

import pytest

from controller.api.workspace import ConfigFile, ConfigMapSource, ConfigSource, WritePolicy
from controller.core.causes import Cause
from controller.core.configfiles import (
    NO_CONFIG_SOURCE_MESSAGE,
    AuthTokenFile,
    config_tree,
    merge_config_files,
    new_auth_token,
    normalise_line_endings,
)
from controller.port.values import File

TOKEN = "tok-123"


def merge(
    config_maps: list[dict[str, str | bytes]],
    inline: list[ConfigFile],
    token: AuthTokenFile | str | None = TOKEN,
    map_policies: list[WritePolicy] | None = None,
) -> dict[str, File] | Cause:
    policies = map_policies or ["Always"] * len(config_maps)
    source = ConfigSource(
        files=tuple(inline),
        from_config_maps=tuple(
            ConfigMapSource(name=f"cm{i}", write_policy=policy) for i, policy in enumerate(policies)
        ),
    )
    if isinstance(token, str):
        token = AuthTokenFile(token, "Always")
    return merge_config_files(config_maps, source, token)


def merged_files(
    config_maps: list[dict[str, str | bytes]],
    inline: list[ConfigFile],
    token: AuthTokenFile | str | None = TOKEN,
    map_policies: list[WritePolicy] | None = None,
) -> dict[str, File]:
    result = merge(config_maps, inline, token, map_policies)
    assert isinstance(result, dict), result
    return result


def merged(
    config_maps: list[dict[str, str | bytes]], inline: list[ConfigFile], token: str = TOKEN
) -> dict[str, bytes]:
    return {path: file.content for path, file in merged_files(config_maps, inline, token).items()}


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
    result = merge([{"other": "x"}], [ConfigFile(path="x.md", content="y")])
    assert result == Cause("NoConfigSource", NO_CONFIG_SOURCE_MESSAGE)
    assert "no config.yaml source" in NO_CONFIG_SOURCE_MESSAGE


def test_empty_config_yaml_counts_as_missing() -> None:
    result = merge([{"config.yaml": ""}], [])
    assert isinstance(result, Cause)
    assert result.reason == "NoConfigSource"


def test_config_map_may_not_provide_the_token_file() -> None:
    result = merge([{"config.yaml": "x", ".auth_token": "stolen"}], [])
    assert isinstance(result, Cause)
    assert result.reason == "InvalidConfig"


@pytest.mark.parametrize("key", ["..", ".", "a/../b", "/etc/passwd"])
def test_config_map_keys_that_escape_configs_are_refused(key: str) -> None:
    result = merge([{"config.yaml": "x", key: "y"}], [])
    assert isinstance(result, Cause)
    assert result.reason == "InvalidConfig"


def test_empty_token_is_refused() -> None:
    result = merge([{"config.yaml": "x"}], [], "")
    assert isinstance(result, Cause)
    assert result.reason == "InvalidAuthToken"


def test_new_auth_tokens_are_random_shell_safe_and_unpadded() -> None:
    first, second = new_auth_token(), new_auth_token()
    assert first != second
    assert len(first) == 43  # 32 bytes, URL-safe base64 without '='
    assert set(first) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_config_tree_is_written_to_configs_with_the_token_readable_by_its_owner_only() -> None:
    tree = config_tree(merged_files([{"config.yaml": "x", "skills/a/SKILL.md": "s"}], []))
    assert tree.root == "/configs"
    assert tree.files == {
        "config.yaml": File(b"x", 0o644),
        "skills/a/SKILL.md": File(b"s", 0o644),
        ".auth_token": File(TOKEN.encode(), 0o600),
    }


def test_no_token_is_written_when_none_is_asked_for() -> None:
    files = merged_files([{"config.yaml": "x"}], [], None)
    assert ".auth_token" not in files


def test_the_platforms_token_always_wins_and_a_generated_one_is_written_only_when_absent() -> None:
    given = merged_files([{"config.yaml": "x"}], [], AuthTokenFile(TOKEN, "Always"))
    generated = merged_files([{"config.yaml": "x"}], [], AuthTokenFile(TOKEN, "IfNotPresent"))
    assert given[".auth_token"] == File(TOKEN.encode(), 0o600, if_absent=False)
    assert generated[".auth_token"] == File(TOKEN.encode(), 0o600, if_absent=True)


def test_a_file_takes_the_write_policy_of_the_source_it_came_from() -> None:
    files = merged_files(
        [{"config.yaml": "cm", "seed.md": "s", "a.txt": "a"}, {"b.txt": "b"}],
        [ConfigFile(path="a.txt", content="inline", write_policy="Always")],
        map_policies=["IfNotPresent", "Always"],
    )
    assert files["config.yaml"].if_absent
    assert files["seed.md"].if_absent
    assert not files["a.txt"].if_absent  # the inline file overrides the ConfigMap's key, policy and all
    assert not files["b.txt"].if_absent


def test_a_missing_optional_config_map_keeps_the_others_policies_in_step() -> None:
    files = merged_files([{}, {"config.yaml": "x"}], [], map_policies=["Always", "IfNotPresent"])
    assert files["config.yaml"].if_absent


def test_an_inline_config_written_only_when_absent_still_needs_content() -> None:
    result = merge([], [ConfigFile(path="config.yaml", content="", write_policy="IfNotPresent")])
    assert isinstance(result, Cause)
    assert result.reason == "NoConfigSource"
