"""How one log line reads, as text or as JSON.

Pure functions of the line's parts, without the `logging` machinery, so that
the supervisor process writes lines identical to everyone else's without
loading it (`dockyard.logging` builds its formatters on these).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping


@functools.lru_cache(maxsize=4)
def _second(whole: int) -> str:
    # Lines come many to a second: format each second once.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


def timestamp(created: float) -> str:
    """UTC, to the millisecond: `2026-12-04T18:15:49.934Z`."""
    return f"{_second(int(created))}.{int(created * 1000) % 1000:03d}Z"


def text_line(
    created: float, level: str, logger: str, message: str, fields: Mapping[str, object]
) -> str:
    """`time LEVEL logger message key=value ...`, readable in a terminal."""
    parts = [timestamp(created), level.upper(), logger, message]
    parts.extend(f"{key}={_text(value)}" for key, value in fields.items())
    return " ".join(parts)


def json_line(
    created: float, level: str, logger: str, message: str, fields: Mapping[str, object]
) -> str:
    """One JSON object, for log collectors."""
    entry = {
        "time": timestamp(created),
        "level": level.lower(),
        "logger": logger,
        "message": message,
        **fields,
    }
    return json.dumps(entry, default=str)


def _text(value: object) -> str:
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return json.dumps(text) if (" " in text or not text) else text
