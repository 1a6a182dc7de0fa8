"""Slow down password guessing: lock out an address after repeated failures.

The counters live in each process, so with N workers an address may try up to
N times the limit before every worker has locked it out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

MAX_TRACKED = 100_000


@dataclass(slots=True)
class _Failures:
    count: int
    first: float
    locked_until: float = 0.0


class Lockout:
    def __init__(self, attempts: int, seconds: int) -> None:
        self.attempts = attempts
        self.seconds = seconds
        self._failures: dict[str, _Failures] = {}

    def locked(self, source: str) -> bool:
        entry = self._failures.get(source)
        return entry is not None and entry.locked_until > time.monotonic()

    def failed(self, source: str) -> bool:
        """Count a failure; True when this one locks the source out."""
        now = time.monotonic()
        entry = self._failures.get(source)
        if entry is None or now - entry.first > self.seconds:
            if len(self._failures) >= MAX_TRACKED:
                del self._failures[next(iter(self._failures))]
            entry = self._failures[source] = _Failures(0, now)
        entry.count += 1
        if entry.count >= self.attempts:
            entry.locked_until = now + self.seconds
            return True
        return False

    def succeeded(self, source: str) -> None:
        self._failures.pop(source, None)
