"""Registry credentials in the shape the daemon accepts for a pull (the X-Registry-Auth header).

Callers resolve a dockerconfigjson Secret to the entry for the image's registry and pass either
`{"username": ..., "password": ...}` or `{"auth": base64("user:password")}` (the form the config file
stores). The daemon only reads username/password (or tokens), so `auth` is decoded here.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

__all__ = ["InvalidRegistryAuth", "pull_auth_config"]

_PASSED_THROUGH = ("identitytoken", "registrytoken", "serveraddress", "email")


class InvalidRegistryAuth(ValueError):
    """The credentials cannot be used (malformed `auth`, or neither user/password nor a token)."""


def pull_auth_config(auth: Mapping[str, str] | None) -> dict[str, str] | None:
    """Normalize credentials for one registry; None means an anonymous pull."""
    if not auth:
        return None
    username = auth.get("username") or ""
    password = auth.get("password") or ""
    encoded = auth.get("auth") or ""
    if encoded and not (username and password):
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidRegistryAuth("registry auth is not base64 of 'username:password'") from exc
        username, sep, password = decoded.partition(":")
        if not sep:
            raise InvalidRegistryAuth("registry auth is not base64 of 'username:password'")
    config = {key: auth[key] for key in _PASSED_THROUGH if auth.get(key)}
    if username:
        config["username"] = username
    if password:
        config["password"] = password
    has_password = "username" in config and "password" in config
    if not (has_password or "identitytoken" in config or "registrytoken" in config):
        raise InvalidRegistryAuth("registry auth needs username and password, or a token")
    return config
