"""The supervisor's rules, with stand-in workers (short Python scripts).

Each test runs the supervisor in its own process: it blocks signals in the
thread that runs it, which must not be the test runner's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

RUN_SUPERVISOR = """
import json, sys
from dockyard.server.supervisor import Log, Supervisor
command, count, limits = json.loads(sys.argv[1])
sys.exit(Supervisor(command, count, log=Log("info", "json"), **limits).run())
"""

# Dies 0.3 s after its first start; every later start stays up and says so.
DIES_ONCE = """
import os, pathlib, sys, time
here = pathlib.Path(sys.argv[1])
if not (here / "died").exists():
    (here / "died").touch()
    time.sleep(0.3)
    sys.exit(7)
(here / f"alive-{os.getpid()}").touch()
time.sleep(60)
"""

# Ignores SIGTERM, as a worker stuck in a request would.
STUBBORN = """
import os, pathlib, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
(pathlib.Path(sys.argv[1]) / f"alive-{os.getpid()}").touch()
time.sleep(60)
"""


class Supervised:
    def __init__(self, process: subprocess.Popen[str], workdir: Path) -> None:
        self.process = process
        self.workdir = workdir

    def alive_workers(self) -> list[int]:
        return [int(path.name.split("-")[1]) for path in self.workdir.glob("alive-*")]

    def messages(self) -> list[str]:
        assert self.process.stderr is not None
        lines = self.process.stderr.read().splitlines()
        return [json.loads(line)["message"] for line in lines if line.startswith("{")]


@pytest.fixture
def supervise(tmp_path: Path) -> Iterator[Callable[..., Supervised]]:
    started: list[subprocess.Popen[str]] = []

    def start(worker: str, count: int, **limits: float) -> Supervised:
        command = [sys.executable, "-c", worker, str(tmp_path)]
        options = json.dumps([command, count, limits])
        process = subprocess.Popen(
            [sys.executable, "-c", RUN_SUPERVISOR, options],
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        started.append(process)
        return Supervised(process, tmp_path)

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_worker_that_cannot_start_stops_the_server(
    supervise: Callable[..., Supervised],
) -> None:
    supervised = supervise("raise SystemExit(3)", 2)

    assert supervised.process.wait(timeout=10) == 1
    assert "worker failed to start, stopping" in supervised.messages()


def test_a_worker_that_dies_later_is_replaced(
    supervise: Callable[..., Supervised],
) -> None:
    supervised = supervise(DIES_ONCE, 1, startup_grace=0.1)
    _wait_for(supervised.alive_workers)
    (replacement,) = supervised.alive_workers()

    supervised.process.send_signal(signal.SIGTERM)

    assert supervised.process.wait(timeout=10) == 0
    assert not _running(replacement)
    messages = supervised.messages()
    assert messages.count("worker started") == 2
    assert "worker died, starting another" in messages
    assert messages[-2:] == ["stopping", "stopped"]


def test_a_worker_that_ignores_sigterm_is_killed_after_the_stop_timeout(
    supervise: Callable[..., Supervised],
) -> None:
    supervised = supervise(STUBBORN, 2, stop_timeout=0.5)
    _wait_for(lambda: len(supervised.alive_workers()) == 2)

    supervised.process.send_signal(signal.SIGTERM)

    assert supervised.process.wait(timeout=10) == 0
    assert not any(_running(pid) for pid in supervised.alive_workers())
    assert "killing workers" in supervised.messages()


def test_a_second_stop_request_does_not_wait_for_the_workers(
    supervise: Callable[..., Supervised],
) -> None:
    supervised = supervise(STUBBORN, 1, stop_timeout=60)
    _wait_for(supervised.alive_workers)

    supervised.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    supervised.process.send_signal(signal.SIGINT)

    assert supervised.process.wait(timeout=10) == 0
    assert "killing workers" in supervised.messages()
