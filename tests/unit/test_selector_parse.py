"""The kubectl `-l` selector syntax that WC_HOST_SELECTOR and WC_WORKSPACE_SELECTOR take."""

from __future__ import annotations

import re

import pytest

from controller.core.selectors import parse_selector, selector_matches


@pytest.mark.parametrize(
    ("text", "labels", "matches"),
    [
        ("", {}, True),
        ("", {"a": "b"}, True),
        ("shard=a", {"shard": "a"}, True),
        ("shard=a", {"shard": "b"}, False),
        ("shard==a", {"shard": "a"}, True),
        ("shard!=a", {"shard": "b"}, True),
        ("shard!=a", {}, True),
        ("shard!=a", {"shard": "a"}, False),
        ("gpu", {"gpu": ""}, True),
        ("gpu", {}, False),
        ("!gpu", {}, True),
        ("!gpu", {"gpu": "yes"}, False),
        ("zone in (a, b)", {"zone": "b"}, True),
        ("zone in (a,b)", {"zone": "c"}, False),
        ("zone notin (a,b)", {"zone": "c"}, True),
        ("zone notin (a,b)", {}, True),
        ("zone in (a,b),shard=x", {"zone": "a", "shard": "x"}, True),
        ("zone in (a,b),shard=x", {"zone": "a", "shard": "y"}, False),
        (" shard = x , !cordoned ", {"shard": "x"}, True),
        ("molecule.ai/shard=east", {"molecule.ai/shard": "east"}, True),
        ("a=1,a=2", {"a": "1"}, False),
    ],
)
def test_a_parsed_selector_selects_what_kubectl_would(
    text: str, labels: dict[str, str], matches: bool
) -> None:
    assert selector_matches(parse_selector(text), labels) is matches


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a=1,,b=2", "empty requirement"),
        ("zone in (a,b", "unmatched '('"),
        ("zone)", "unmatched ')'"),
        ("bad key!=x=y", "not a label selector"),
        ("k=" + "v" * 64, "not a label selector"),
        ("zone in ()", "empty value"),
    ],
)
def test_a_malformed_selector_is_refused_with_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_selector(text)
