"""Log configuration: readable text for people, JSON for log pipelines."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("namespace", "name", "workspace_uid"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # kopf's per-object lines are useful; aiohttp's and urllib3's are noise at INFO.
    for noisy in ("aiohttp", "urllib3", "docker"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # kopf reports every watch event handled (Workspaces, policies, namespaces); the controller logs what
    # it did instead.
    logging.getLogger("kopf.objects").addFilter(_drop_event_handler_lines)


_EVENT_HANDLER_DONE = re.compile(r"Handler 'on_\w+_event' succeeded")


def _drop_event_handler_lines(record: logging.LogRecord) -> bool:
    return _EVENT_HANDLER_DONE.search(record.getMessage()) is None
