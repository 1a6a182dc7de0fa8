"""Samples, and timing them on a shared machine.

Every timed step first flushes dirty pages and waits (a bounded time) for the
machine to be quiet, and records how busy it was and how much CPU the host
stole while the step ran.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from benchlib import BenchError
from benchlib.procstat import cpu_counters, cpu_share, wait_for_quiet

FAILURES = (BenchError, OSError, httpx.HTTPError, subprocess.SubprocessError)
T = TypeVar("T")


@dataclass(frozen=True)
class Quiet:
    """When a timed step may start: machine CPU share under ``threshold``."""

    threshold: float
    max_wait: float


@dataclass
class Measurement:
    """One sample of one table row on one server; ``value`` is None on error."""

    server: str
    row: str
    run: int
    value: float | None = None
    seconds: float = 0.0
    busy_before: float = 0.0
    steal: float = 0.0
    error: str | None = None
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Timing:
    """Wall time of an action and the machine's state around it."""

    seconds: float
    busy_before: float
    steal: float


def timed(
    action: Callable[[], T],
    quiet: Quiet,
    warmup: Callable[[], object] | None = None,
) -> tuple[T, Timing]:
    """Flush dirty pages, wait for a quiet machine, warm up, then time ``action``."""
    os.sync()
    busy = wait_for_quiet(quiet.threshold, quiet.max_wait)
    if warmup is not None:
        warmup()
    before = cpu_counters()
    start = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - start
    share = cpu_share(before, cpu_counters())
    return result, Timing(seconds=seconds, busy_before=busy, steal=share.steal)


def fill(sample: Measurement, value: float, timing: Timing) -> Measurement:
    """Record a good value and the timing it came from."""
    sample.value = value
    sample.seconds = timing.seconds
    sample.busy_before = timing.busy_before
    sample.steal = timing.steal
    return sample


def guarded(
    sample: Measurement, action: Callable[[Measurement], Measurement]
) -> Measurement:
    """Run a measurement, turning a failure into an error on its sample."""
    try:
        return action(sample)
    except FAILURES as error:
        sample.value = None
        sample.error = f"{type(error).__name__}: {error}"
        return sample
