"""Process-tree memory and CPU from /proc, and machine-wide CPU use."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MAX_SAMPLING_SECONDS = 3600.0


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name, or None if gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name sits in parentheses and may itself hold spaces.
    return text[text.rfind(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))

    tree: list[int] = []
    pending = [root]
    while pending and len(tree) < 10_000:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def tree_cpu_seconds(root: int) -> float:
    """User plus system CPU time of the live processes under ``root``."""
    ticks = 0
    for pid in process_tree(root):
        fields = _stat_fields(pid)
        if fields is not None:
            # utime and stime are fields 14 and 15 of stat, 12 and 13 here.
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


@dataclass(frozen=True)
class MemorySample:
    """Memory of one process tree at one instant, in bytes."""

    rss: int
    pss: int
    processes: int


def _rss(pid: int) -> int:
    try:
        resident = (PROC / str(pid) / "statm").read_text().split()[1]
    except (OSError, IndexError):
        return 0
    return int(resident) * PAGE_SIZE


def _pss(pid: int) -> int:
    try:
        lines = (PROC / str(pid) / "smaps_rollup").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def tree_memory(root: int) -> MemorySample:
    """Summed RSS and PSS of the process tree under ``root``."""
    pids = process_tree(root)
    return MemorySample(
        rss=sum(_rss(pid) for pid in pids),
        pss=sum(_pss(pid) for pid in pids),
        processes=len(pids),
    )


class MemoryWatch:
    """Tracks the peak memory of a process tree on a thread, until stopped.

    RSS is read every ``interval`` from the processes last seen in the tree;
    the tree itself (workers may come and go) and the costlier PSS are read
    every ``slow_interval``.
    """

    def __init__(
        self, root: int, interval: float = 0.1, slow_interval: float = 1.0
    ) -> None:
        self.root = root
        self.interval = interval
        self.slow_interval = slow_interval
        self.idle = tree_memory(root)
        self.peak_rss = self.idle.rss
        self.peak_pss = self.idle.pss
        self.peak_processes = self.idle.processes
        self._pids = process_tree(root)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> MemoryWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._read_slow()

    def _run(self) -> None:
        deadline = time.monotonic() + MAX_SAMPLING_SECONDS
        next_slow = time.monotonic()
        while not self._stop.wait(self.interval) and time.monotonic() < deadline:
            if time.monotonic() >= next_slow:
                self._read_slow()
                next_slow = time.monotonic() + self.slow_interval
            self.peak_rss = max(self.peak_rss, sum(_rss(pid) for pid in self._pids))

    def _read_slow(self) -> None:
        self._pids = process_tree(self.root)
        sample = tree_memory(self.root)
        self.peak_rss = max(self.peak_rss, sample.rss)
        self.peak_pss = max(self.peak_pss, sample.pss)
        self.peak_processes = max(self.peak_processes, sample.processes)


@dataclass(frozen=True)
class CpuCounters:
    """Machine-wide jiffies from the first line of /proc/stat."""

    busy: int
    idle: int
    steal: int

    @property
    def total(self) -> int:
        return self.busy + self.idle + self.steal


def cpu_counters() -> CpuCounters:
    """Read the aggregate CPU line of /proc/stat."""
    first = (PROC / "stat").read_text().splitlines()[0].split()
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, first[1:9])
    return CpuCounters(
        busy=user + nice + system + irq + softirq,
        idle=idle + iowait,
        steal=steal,
    )


@dataclass(frozen=True)
class CpuShare:
    """Fractions of the machine's CPU time between two readings."""

    busy: float
    steal: float


def cpu_share(before: CpuCounters, after: CpuCounters) -> CpuShare:
    """How busy the machine was, and how much the host stole, in between."""
    total = max(after.total - before.total, 1)
    return CpuShare(
        busy=(after.busy - before.busy) / total,
        steal=(after.steal - before.steal) / total,
    )


def wait_for_quiet(threshold: float, max_wait: float, window: float = 0.5) -> float:
    """Wait until machine CPU use over ``window`` drops below ``threshold``.

    Gives up after ``max_wait`` seconds and returns the last busy fraction seen,
    so the caller can record that it measured on a busy machine.
    """
    deadline = time.monotonic() + max_wait
    while True:
        before = cpu_counters()
        time.sleep(window)
        share = cpu_share(before, cpu_counters())
        if share.busy + share.steal < threshold or time.monotonic() >= deadline:
            return share.busy + share.steal
