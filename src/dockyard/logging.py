"""Structured logging: constant messages, values as fields, text or JSON lines."""

from __future__ import annotations

import logging
import sys
from typing import Any

from dockyard import log_lines

# Attributes every LogRecord has; anything else was passed as `extra` fields.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class TextFormatter(logging.Formatter):
    """`time LEVEL logger message key=value ...`, readable in a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        line = log_lines.text_line(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            _fields(record),
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return log_lines.json_line(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            fields,
        )


def configure(level: str = "info", fmt: str = "text") -> None:
    # What no formatter here prints, no record needs to gather: the caller's
    # frame, thread and process (the logging HOWTO's "Optimization" switches).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The server's own access log would duplicate ours.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def server_log_config(level: str = "info", fmt: str = "text") -> dict[str, Any]:
    """A dictConfig that routes an ASGI server's own loggers through ours."""
    formatter = (
        "dockyard.logging.JsonFormatter"
        if fmt == "json"
        else ("dockyard.logging.TextFormatter")
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"dockyard": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "dockyard",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "_granian": {
                "handlers": ["stderr"],
                "level": level.upper(),
                "propagate": False,
            },
            "granian.access": {"handlers": [], "propagate": False},
        },
    }
