"""Log lines: kopf's per-event "handler succeeded" noise is dropped, all else kept; JSON lines parse."""

from __future__ import annotations

import json
import logging

import pytest

from controller.logs import JsonFormatter, _drop_event_handler_lines


def record(message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)


@pytest.mark.parametrize("handler", ["on_workspace_event", "on_policy_event", "on_namespace_event"])
def test_event_handlers_that_succeeded_are_not_logged(handler: str) -> None:
    assert not _drop_event_handler_lines(record(f"Handler '{handler}' succeeded."))


@pytest.mark.parametrize(
    "message",
    [
        "Handler 'on_policy_event' failed with an exception.",
        "Daemon 'workspace_loop' succeeded.",
        "Adding the finalizer",
    ],
)
def test_everything_else_is_logged(message: str) -> None:
    assert _drop_event_handler_lines(record(message))


def test_json_lines_carry_time_level_logger_and_message() -> None:
    line = json.loads(JsonFormatter().format(record("hello", logging.WARNING)))
    assert (line["level"], line["logger"], line["message"]) == ("warning", "kopf.objects", "hello")
    assert line["time"].endswith("+00:00")
