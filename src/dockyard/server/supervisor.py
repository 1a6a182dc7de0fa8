"""The supervising process: start the workers, restart one that dies, stop them
all on SIGTERM or SIGINT.

It stays small on purpose (about 10 MiB, against 29 MiB for granian's own
launcher): it imports a few modules of the standard library and Dockyard's log
line format (`dockyard.log_lines`), not even `logging`, and never granian,
SQLAlchemy or the application. Signals are taken synchronously
(`sigwaitinfo`, with SIGCHLD among them), so a worker's exit and a request to
stop are handled one at a time, in the order they came, with no handler racing
the loop.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from dockyard import log_lines

# Must match `dockyard.server.granian_worker.LIFELINE_ENV` (not imported: that
# module imports granian and the application).
LIFELINE_ENV = "DOCKYARD_LIFELINE_FD"
WORKER_MODULE = "dockyard.server.granian_worker"
# Seconds a worker gets to finish its requests once asked to stop.
STOP_TIMEOUT = 30.0
# A worker that dies this soon after it started could not start (settings, the
# database or the address): starting it again would fail the same way.
STARTUP_GRACE = 5.0
WATCHED = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class Log:
    """Lines in the format and at the level the rest of the server uses."""

    name = "dockyard.server.supervisor"

    def __init__(self, level: str = "info", fmt: str = "text") -> None:
        self.threshold = LEVELS[level]
        self.line = log_lines.json_line if fmt == "json" else log_lines.text_line

    def __call__(self, level: str, message: str, **fields: object) -> None:
        if LEVELS[level] >= self.threshold:
            line = self.line(time.time(), level, self.name, message, fields)
            print(line, file=sys.stderr, flush=True)


class _Worker:
    __slots__ = ("slot", "pid", "started")

    def __init__(self, slot: int, pid: int) -> None:
        self.slot = slot
        self.pid = pid
        self.started = time.monotonic()


class Supervisor:
    """Keeps `count` copies of `command` running until asked to stop."""

    def __init__(
        self,
        command: list[str],
        count: int,
        *,
        startup_grace: float = STARTUP_GRACE,
        stop_timeout: float = STOP_TIMEOUT,
        log: Log | None = None,
    ) -> None:
        self.command = command
        self.log = log or Log()
        self.count = count
        self.startup_grace = startup_grace
        self.stop_timeout = stop_timeout
        self.workers: dict[int, _Worker] = {}
        # Workers read the pipe's other end and stop on its end of file, which
        # comes when this process is gone, however it went.
        self._lifeline, self._lifeline_hold = os.pipe()
        os.set_inheritable(self._lifeline, True)

    def run(self) -> int:
        """Supervise until SIGTERM or SIGINT; return the exit status."""
        signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
        for slot in range(self.count):
            self._start(slot)
        while True:
            signum = signal.sigwaitinfo(WATCHED).si_signo
            if signum != signal.SIGCHLD:
                self.log("info", "stopping", signal=signal.Signals(signum).name)
                return self._stop_all(0)
            for worker, status in self._reap():
                ran = time.monotonic() - worker.started
                if ran < self.startup_grace:
                    self.log(
                        "error",
                        "worker failed to start, stopping",
                        pid=worker.pid,
                        status=status,
                    )
                    return self._stop_all(1)
                self.log(
                    "warning",
                    "worker died, starting another",
                    pid=worker.pid,
                    status=status,
                    ran_s=round(ran),
                )
                self._start(worker.slot)

    def _start(self, slot: int) -> None:
        env = {**os.environ, LIFELINE_ENV: str(self._lifeline)}
        # The child starts with no signal blocked (ours are, for sigwaitinfo).
        pid = os.posix_spawn(self.command[0], self.command, env, setsigmask=())
        self.workers[pid] = _Worker(slot, pid)
        self.log("info", "worker started", worker=slot + 1, pid=pid)

    def _reap(self) -> list[tuple[_Worker, int]]:
        """The workers that exited, with their exit statuses (-N: signal N)."""
        exited = []
        while self.workers:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            worker = self.workers.pop(pid, None)
            if worker is not None:
                exited.append((worker, os.waitstatus_to_exitcode(status)))
        return exited

    def _stop_all(self, status: int) -> int:
        for pid in self.workers:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while self.workers:
            remaining = deadline - time.monotonic()
            received = signal.sigtimedwait(WATCHED, max(remaining, 0))
            # Out of time, or asked a second time: stop waiting for requests.
            if received is None or received.si_signo != signal.SIGCHLD:
                self._kill_all()
            self._reap()
        self.log("info", "stopped")
        return status

    def _kill_all(self) -> None:
        self.log("warning", "killing workers", pids=sorted(self.workers))
        for pid in self.workers:
            os.kill(pid, signal.SIGKILL)
        for pid in list(self.workers):
            os.waitpid(pid, 0)
            del self.workers[pid]


def main(argv: list[str]) -> int:
    """`--workers=N --log-level=L --log-format=F`, as `dockyard serve` passes them.

    (Parsed by hand: argparse alone would add half a megabyte to this process.)
    """
    options = dict(arg.removeprefix("--").split("=", 1) for arg in argv)
    log = Log(options.get("log-level", "info"), options.get("log-format", "text"))
    command = [sys.executable, "-m", WORKER_MODULE]
    return Supervisor(command, int(options.get("workers", "1")), log=log).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
