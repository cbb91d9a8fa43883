"""The one retry delay: doubling from one second, 32 s at the fifth retry, then capped at a minute."""

from __future__ import annotations

import pytest

from controller.core.backoff import MAX_BACKOFF, backoff


@pytest.mark.parametrize(
    ("retries", "seconds"),
    [
        pytest.param(-100, 1.0, id="far negative as 0"),
        pytest.param(-1, 1.0, id="negative as 0"),
        pytest.param(0, 1.0, id="0"),
        pytest.param(1, 2.0, id="1"),
        pytest.param(2, 4.0, id="2"),
        pytest.param(3, 8.0, id="3"),
        pytest.param(4, 16.0, id="4"),
        pytest.param(5, 32.0, id="5"),
        pytest.param(6, 60.0, id="6 capped"),
        pytest.param(7, 60.0, id="7 capped"),
        pytest.param(100, 60.0, id="100 capped"),
        pytest.param(10**6, 60.0, id="a million capped"),
    ],
)
def test_backoff(retries: int, seconds: float) -> None:
    assert backoff(retries) == seconds


def test_the_cap_is_a_minute() -> None:
    assert MAX_BACKOFF == 60.0


def test_backoff_never_decreases() -> None:
    delays = [backoff(retries) for retries in range(-3, 20)]
    assert delays == sorted(delays)
