"""Secret values out of messages, whatever spelling the message quotes them in."""

from __future__ import annotations

import json

from controller.core.causes import Cause
from controller.core.redact import REDACTED, redact, redact_cause


def test_a_raw_value_is_replaced_wherever_it_appears() -> None:
    assert redact("key=hunter22 and again hunter22", ["hunter22"]) == f"key={REDACTED} and again {REDACTED}"


def test_json_and_go_style_escapes_of_the_value_are_replaced_too() -> None:
    value = "p\u00e4ss\u202e\tword"
    quoted = json.dumps(value)  # "p\u00e4ss\u202e\tword"
    assert value not in redact(f"bad env {quoted}", [value]).replace(REDACTED, "")
    assert REDACTED in redact(f"bad env {quoted}", [value])
    assert REDACTED in redact(f"bad env {json.dumps(value, ensure_ascii=False)}", [value])


def test_the_longest_value_goes_first_so_no_tail_of_it_is_left() -> None:
    assert redact("abcdefgh", ["abcd", "abcdefgh"]) == REDACTED


def test_values_too_short_to_be_told_from_words_are_left() -> None:
    assert redact("the cat sat", ["cat"]) == "the cat sat"


def test_a_cause_keeps_its_reason_and_is_the_same_object_when_nothing_was_secret() -> None:
    cause = Cause("ReconcileError", "failed: token-123456")
    assert redact_cause(cause, ["token-123456"]) == Cause("ReconcileError", f"failed: {REDACTED}")
    assert redact_cause(cause, ["nothing-here"]) is cause
