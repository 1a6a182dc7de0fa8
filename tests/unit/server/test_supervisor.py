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

# Each stand-in says it is ready (unless told otherwise), notes its pid in the
# working directory, and stays up.
READY = """
import os, pathlib, signal, sys, time
here = pathlib.Path(sys.argv[1])
os.kill(os.getppid(), signal.SIGRTMIN)
(here / f"alive-{os.getpid()}").touch()
"""
STAYS_UP = READY + "time.sleep(60)\n"

# The first one dies after it was ready; the next ones stay up.
DIES_ONCE = (
    READY
    + """
if not (here / "died").exists():
    (here / f"alive-{os.getpid()}").unlink()
    (here / "died").touch()
    sys.exit(7)
time.sleep(60)
"""
)

# The first one waits for a "go" file, says it is ready and dies at once; the
# next ones stay up.
READY_THEN_DIES_AT_ONCE = (
    """
import os, pathlib, signal, sys, time
here = pathlib.Path(sys.argv[1])
if not (here / "died").exists():
    (here / f"first-{os.getpid()}").touch()
    while not (here / "go").exists():
        time.sleep(0.01)
    (here / "died").touch()
    os.kill(os.getppid(), signal.SIGRTMIN)
    os._exit(7)
"""
    + STAYS_UP
)

# Ignores SIGTERM, as a worker stuck in a request would.
STUBBORN = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + STAYS_UP

# The first generation starts; the ones started after a SIGHUP cannot.
CANNOT_RESTART = (
    """
import pathlib, sys
if (pathlib.Path(sys.argv[1]) / "reloading").exists():
    sys.exit(3)
"""
    + STAYS_UP
)

# The first one started after a SIGHUP waits for a "go" file and fails; the
# others stay up.
FAILS_LATE_IN_RELOAD = (
    """
import os, pathlib, sys, time
here = pathlib.Path(sys.argv[1])
if (here / "reloading").exists():
    (here / "reloading").unlink()
    (here / f"new-{os.getpid()}").touch()
    while not (here / "go").exists():
        time.sleep(0.01)
    sys.exit(3)
"""
    + STAYS_UP
)


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


def test_a_worker_that_never_said_ready_counts_as_not_started(
    supervise: Callable[..., Supervised],
) -> None:
    supervised = supervise("import time; time.sleep(1)", 1)

    assert supervised.process.wait(timeout=10) == 1
    assert "worker failed to start, stopping" in supervised.messages()


def test_a_worker_that_dies_later_is_replaced(
    supervise: Callable[..., Supervised],
) -> None:
    supervised = supervise(DIES_ONCE, 1)
    _wait_for(lambda: (supervised.workdir / "died").exists())
    _wait_for(supervised.alive_workers)
    (replacement,) = supervised.alive_workers()

    supervised.process.send_signal(signal.SIGTERM)

    assert supervised.process.wait(timeout=10) == 0
    assert not _running(replacement)
    messages = supervised.messages()
    assert messages.count("worker started") == 2
    assert "worker died, starting another" in messages
    assert messages[-3:] == ["stopping", "worker stopped", "stopped"]


def _is_zombie(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_a_worker_ready_and_dead_before_the_supervisor_looks_is_replaced(
    supervise: Callable[..., Supervised],
) -> None:
    supervised = supervise(READY_THEN_DIES_AT_ONCE, 1)
    _wait_for(lambda: list(supervised.workdir.glob("first-*")))
    (first,) = supervised.workdir.glob("first-*")
    first_pid = int(first.name.split("-")[1])
    # Stopped, the supervisor finds the ready signal and SIGCHLD both
    # pending when it goes on.
    os.kill(supervised.process.pid, signal.SIGSTOP)
    (supervised.workdir / "go").touch()
    _wait_for(lambda: _is_zombie(first_pid))
    os.kill(supervised.process.pid, signal.SIGCONT)

    _wait_for(supervised.alive_workers)
    supervised.process.send_signal(signal.SIGTERM)
    assert supervised.process.wait(timeout=10) == 0
    messages = supervised.messages()
    assert messages.count("worker started") == 2
    assert "worker died, starting another" in messages
    assert "worker failed to start, stopping" not in messages


def test_sighup_replaces_every_worker_once_its_successor_is_ready(
    supervise: Callable[..., Supervised],
) -> None:
    supervised = supervise(STAYS_UP, 2)
    _wait_for(lambda: len(supervised.alive_workers()) == 2)
    first = set(supervised.alive_workers())

    supervised.process.send_signal(signal.SIGHUP)

    _wait_for(lambda: len(supervised.alive_workers()) == 4)
    _wait_for(lambda: not any(_running(pid) for pid in first))
    second = set(supervised.alive_workers()) - first
    assert all(_running(pid) for pid in second)
    supervised.process.send_signal(signal.SIGTERM)
    assert supervised.process.wait(timeout=10) == 0
    messages = supervised.messages()
    assert messages.count("worker ready") == 4
    assert messages.index("reloaded") > messages.index("reloading")


def test_a_reload_whose_workers_cannot_start_keeps_the_running_ones(
    supervise: Callable[..., Supervised],
) -> None:
    supervised = supervise(CANNOT_RESTART, 1)
    _wait_for(supervised.alive_workers)
    (running,) = supervised.alive_workers()
    (supervised.workdir / "reloading").touch()

    supervised.process.send_signal(signal.SIGHUP)
    time.sleep(1.0)

    assert supervised.process.poll() is None
    assert _running(running)
    supervised.process.send_signal(signal.SIGTERM)
    assert supervised.process.wait(timeout=10) == 0
    assert "new worker failed to start, reload ended" in supervised.messages()


def test_a_slot_emptied_during_a_failed_reload_is_filled(
    supervise: Callable[..., Supervised],
) -> None:
    supervised = supervise(FAILS_LATE_IN_RELOAD, 1)
    _wait_for(supervised.alive_workers)
    (old,) = supervised.alive_workers()
    (supervised.workdir / "reloading").touch()
    supervised.process.send_signal(signal.SIGHUP)
    _wait_for(lambda: list(supervised.workdir.glob("new-*")))

    # The worker being replaced dies, then its successor fails.
    os.kill(old, signal.SIGKILL)
    _wait_for(lambda: not Path(f"/proc/{old}").exists())
    (supervised.workdir / "go").touch()

    _wait_for(lambda: set(supervised.alive_workers()) - {old})
    supervised.process.send_signal(signal.SIGTERM)
    assert supervised.process.wait(timeout=10) == 0
    messages = supervised.messages()
    assert "worker died, its successor is starting" in messages
    assert "new worker failed to start, reload ended" in messages
    assert messages.count("worker started") == 3


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
