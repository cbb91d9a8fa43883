"""Registry credentials normalized for the daemon's X-Registry-Auth header."""

from __future__ import annotations

import base64

import pytest

from controller.docker.registry_auth import InvalidRegistryAuth, pull_auth_config


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_no_credentials_means_anonymous() -> None:
    assert pull_auth_config(None) is None
    assert pull_auth_config({}) is None


def test_username_and_password_pass_through() -> None:
    assert pull_auth_config({"username": "u", "password": "p"}) == {"username": "u", "password": "p"}


def test_config_file_auth_is_decoded_because_the_daemon_ignores_it() -> None:
    config = pull_auth_config({"auth": b64("robot:s3:cret")})
    assert config == {"username": "robot", "password": "s3:cret"}


def test_tokens_and_server_address_are_kept() -> None:
    config = pull_auth_config({"identitytoken": "tok", "serveraddress": "ghcr.io"})
    assert config == {"identitytoken": "tok", "serveraddress": "ghcr.io"}


@pytest.mark.parametrize(
    "bad",
    [
        {"auth": "%%%not-base64"},
        {"auth": b64("no-colon")},
        {"username": "only-user"},
        {"email": "a@b.c"},
    ],
)
def test_unusable_credentials_are_rejected(bad: dict[str, str]) -> None:
    with pytest.raises(InvalidRegistryAuth):
        pull_auth_config(bad)
