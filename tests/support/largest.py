"""The largest Workspace the schema admits, written in the costliest characters: every bounded list full,
every string at its maxLength, and free text made of '<', which JSON as kubectl and the apiserver write
it (Go's encoder) spells as six bytes (\\u003c).

A unit test proves it fits kubectl's last-applied annotation; an end-to-end test applies it (client- and
server-side), lets it become Ready, updates and deletes it. What the end-to-end test must make real (an
image that can be pulled, Secrets it names) is a parameter; everything else stays at its maximum.
"""

from __future__ import annotations

import json
from typing import Any

from controller.api.selectors import MAX_MATCH_LABELS
from controller.api.workspace import (
    INLINE_TEXT_BUDGET,
    MAX_CONFIG_FILES,
    MAX_ENV,
    MAX_ENV_FROM,
    MAX_WORKSPACE_NAME_LENGTH,
    TOKEN_MAX_LENGTH,
)

COSTLY = "<"
"""One character, six bytes of JSON."""
ANNOTATIONS_LIMIT = 256 * 1024
"""All of an object's annotations together (keys and values), as the apiserver enforces it."""
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_IMAGE_PULL_SECRETS = 8
MAX_CONFIG_MAPS = 16


def dns_subdomain(length: int, seed: str) -> str:
    """A valid DNS subdomain of exactly `length` characters (labels of 62), distinct per seed (a-z0-9)."""
    chars = [("." if i % 63 == 62 else "a") for i in range(length)]
    chars[: len(seed)] = seed
    name = "".join(chars)
    assert not name.endswith("."), name
    assert ".." not in name, name
    return name


def longest_image() -> str:
    """An image reference of exactly 512 characters (the schema's maximum) that its pattern admits."""
    registry = "r" * 50 + ".example:5000"
    tag = "t" * 128
    path_length = 512 - len(registry) - 1 - 1 - len(tag)  # the '/' after the registry, the ':' before the tag
    path = "/".join(["c" * 59] * (path_length // 60))
    path += "/" + "c" * (path_length - len(path) - 1)
    image = f"{registry}/{path}:{tag}"
    assert len(image) == 512, len(image)
    return image


def numbered(width: int, index: int, alphabet_start: str = "A") -> str:
    """`width` characters, unique per index, from [A-Za-z0-9_] and not starting with a digit."""
    return (f"{alphabet_start}{index:04d}" + "_" * width)[:width]


def label_key(seed: str) -> str:
    """A label key of the greatest length: a 253-character DNS-subdomain prefix, '/', a 63-character name."""
    return f"{dns_subdomain(253, seed)}/{'n' * 63}"


def largest_host_selector() -> dict[str, Any]:
    """Every matchLabels entry and expression the schema allows, at their longest. The expressions are
    NotIn, so a host that lacks these labels matches them; its labels must hold the matchLabels."""
    return {
        "matchLabels": {label_key(f"l{index}"): "v" * 63 for index in range(MAX_MATCH_LABELS)},
        "matchExpressions": [
            {
                "key": label_key(f"e{index}"),
                "operator": "NotIn",
                "values": [f"{v:02d}" + "w" * 61 for v in range(16)],
            }
            for index in range(8)
        ],
    }


def largest_workspace(
    *,
    name: str,
    namespace: str,
    image: str,
    pull_secrets: list[str],
    token_secret: str,
    config_yaml: str = "name: largest\n",
) -> dict[str, Any]:
    """The manifest. `pull_secrets` (8) and `token_secret` must exist for the Workspace to become Ready,
    and a DockerHost must carry the host selector's matchLabels; every other reference is optional and
    may be missing."""
    budget_left = INLINE_TEXT_BUDGET - len(config_yaml)
    files = [{"path": "config.yaml", "content": config_yaml + COSTLY * budget_left}]
    for index in range(1, MAX_CONFIG_FILES):
        path = (f"f{index:02d}-" + "p" * 253)[:253]
        files.append({"path": path, "content": ""})
    env = [
        {
            "name": numbered(128, index),
            "valueFrom": {
                "configMapKeyRef": {
                    "name": dns_subdomain(253, f"env{index}"),
                    "key": ("k" * 253),
                    "optional": True,
                }
            },
        }
        for index in range(MAX_ENV)
    ]
    url = "http://" + COSTLY * (512 - len("http://"))
    return {
        "apiVersion": "molecule.ai/v1alpha1",
        "kind": "Workspace",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "runtime": "x" * 63,
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "imagePullSecrets": [{"name": secret} for secret in pull_secrets],
            "tier": 2,
            "env": env,
            "envFrom": [
                {
                    "prefix": numbered(64, index) if index < MAX_ENV_FROM - 1 else "P" + "_" * 63,
                    ("secretRef" if index % 2 else "configMapRef"): {
                        "name": dns_subdomain(253, f"ef{index}"),
                        "optional": True,
                    },
                }
                for index in range(MAX_ENV_FROM)
            ],
            "config": {
                "files": files,
                "fromConfigMaps": [
                    {"name": dns_subdomain(253, f"cm{index}"), "optional": True}
                    for index in range(MAX_CONFIG_MAPS)
                ],
            },
            "authToken": {"secretRef": {"name": token_secret, "key": "k" * 253}},
            "workspace": {"hostPath": "/" + COSTLY * 1023, "access": "none"},
            "session": {"resetRequestedAt": COSTLY * TOKEN_MAX_LENGTH},
            "restartRequestedAt": COSTLY * TOKEN_MAX_LENGTH,
            "platformURL": url,
            "awareness": {"namespace": COSTLY * 253, "url": url},
            "suspend": False,
            "deletionPolicy": "Retain",
            "placement": {"hostSelector": largest_host_selector()},
        },
    }


def go_json(value: Any) -> str:
    """JSON as Go's encoding/json writes it (kubectl's annotation, the apiserver's storage): compact,
    UTF-8, and '<', '>', '&', U+2028 and U+2029 escaped as \\uXXXX."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char in ("<", ">", "&", "\u2028", "\u2029"):
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def last_applied_size(manifest: dict[str, Any]) -> int:
    """Bytes of kubectl's last-applied-configuration annotation (key and value) for `manifest`."""
    return len(LAST_APPLIED.encode()) + len(go_json(manifest).encode())


LARGEST_NAME_LENGTH = MAX_WORKSPACE_NAME_LENGTH
