"""The supervising process: start the workers, replace one that dies, replace
them all on SIGHUP, stop them on SIGTERM or SIGINT.

It stays small on purpose (about 10 MiB, against 29 MiB for granian's own
launcher): it imports a few modules of the standard library and Dockyard's log
line format (`dockyard.log_lines`), not even `logging`, and never granian,
SQLAlchemy or the application. Signals are taken synchronously
(`sigwaitinfo`, with SIGCHLD among them), so a worker's exit and a request to
stop are handled one at a time, in the order they came, with no handler racing
the loop.

A worker says when it is ready to serve by sending `READY_SIGNAL`, a real-time
signal (those queue, so two workers ready at once are both heard). That tells
a worker that could not start from one that died later:

- one that dies before it is ready, at start-up or replacing a dead worker,
  could not start; starting it again would fail the same way (settings,
  database, address), so the server stops with status 1;
- one that dies after it was ready is replaced;
- SIGHUP replaces the workers one at a time, each old one asked to stop only
  once its replacement is ready (new workers read the TLS certificate files
  again, for example); a replacement that cannot start ends the reload, and the
  workers still running stay (a slot whose old worker died meanwhile gets a
  new one).
"""

from __future__ import annotations

import os
import signal
import sys
import time

from dockyard import log_lines

# The variable naming the lifeline's descriptor in a worker's environment.
LIFELINE_ENV = "DOCKYARD_LIFELINE_FD"
READY_SIGNAL = signal.SIGRTMIN
WORKER_MODULE = "dockyard.server.granian_worker"
# Seconds a worker gets to finish its requests once asked to stop.
STOP_TIMEOUT = 30.0
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
WATCHED = STOP_SIGNALS | {signal.SIGCHLD, signal.SIGHUP, READY_SIGNAL}
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
    __slots__ = ("slot", "pid", "replacing", "ready", "retiring")

    def __init__(self, slot: int, pid: int, replacing: int | None) -> None:
        self.slot = slot
        self.pid = pid
        # The worker this one takes over from in a reload, stopped once this
        # one is ready.
        self.replacing = replacing
        self.ready = False
        # Asked to stop: its exit is expected.
        self.retiring = False


class Supervisor:
    """Keeps `count` copies of `command` running until asked to stop."""

    def __init__(
        self,
        command: list[str],
        count: int,
        *,
        stop_timeout: float = STOP_TIMEOUT,
        log: Log | None = None,
    ) -> None:
        self.command = command
        self.count = count
        self.stop_timeout = stop_timeout
        self.log = log or Log()
        self.workers: dict[int, _Worker] = {}
        # The workers still to replace in a reload; None when none is going on.
        self._to_reload: list[int] | None = None
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
            received = signal.sigwaitinfo(WATCHED)
            signum = received.si_signo
            if signum in STOP_SIGNALS:
                self.log("info", "stopping", signal=signal.Signals(signum).name)
                return self._stop_all(0)
            if signum == signal.SIGHUP:
                self._begin_reload()
            elif signum == READY_SIGNAL:
                self._ready(received.si_pid)
            elif not self._handle_exits():
                return self._stop_all(1)

    def _start(self, slot: int, replacing: int | None = None) -> None:
        env = {**os.environ, LIFELINE_ENV: str(self._lifeline)}
        # The child starts with no signal blocked (ours are, for sigwaitinfo).
        pid = os.posix_spawn(self.command[0], self.command, env, setsigmask=())
        self.workers[pid] = _Worker(slot, pid, replacing)
        self.log("info", "worker started", worker=slot + 1, pid=pid)

    def _ready(self, pid: int) -> None:
        worker = self.workers.get(pid)
        if worker is None or worker.ready:
            return
        worker.ready = True
        self.log("info", "worker ready", worker=worker.slot + 1, pid=pid)
        if worker.replacing is not None:
            self._retire(worker.replacing)
            worker.replacing = None
            self._reload_next()

    def _handle_exits(self) -> bool:
        """Deal with the workers that exited; False when the server must stop."""
        self._hear_queued_ready_signals()
        for worker, status in self._reap():
            fields = {"worker": worker.slot + 1, "pid": worker.pid, "status": status}
            if worker.retiring:
                self.log("info", "worker stopped", **fields)
            elif not worker.ready and worker.replacing is not None:
                self.log("error", "new worker failed to start, reload ended", **fields)
                self._to_reload = None
                if worker.replacing not in self.workers:
                    # The worker it was to replace died meanwhile: fill the slot.
                    self._start(worker.slot)
            elif not worker.ready:
                self.log("error", "worker failed to start, stopping", **fields)
                return False
            elif self._heir_of(worker.pid) is not None:
                self.log("warning", "worker died, its successor is starting", **fields)
            else:
                self.log("warning", "worker died, starting another", **fields)
                self._start(worker.slot)
        return True

    def _hear_queued_ready_signals(self) -> None:
        """Take the ready signals still queued before reaping.

        A worker that said it was ready and died at once leaves both signals
        pending, and SIGCHLD, the lower number, is taken first: without this,
        its exit would read as a failure to start.
        """
        while (pending := signal.sigtimedwait({READY_SIGNAL}, 0)) is not None:
            self._ready(pending.si_pid)

    def _heir_of(self, pid: int) -> _Worker | None:
        heirs = (w for w in self.workers.values() if w.replacing == pid)
        return next(heirs, None)

    def _begin_reload(self) -> None:
        if self._to_reload is not None:
            self.log("warning", "reload already going on")
            return
        self._to_reload = [w.pid for w in self.workers.values() if not w.retiring]
        self.log("info", "reloading", workers=len(self._to_reload))
        self._reload_next()

    def _reload_next(self) -> None:
        if self._to_reload is None:
            return
        while self._to_reload:
            old = self.workers.get(self._to_reload.pop(0))
            # One that died meanwhile was replaced already.
            if old is not None and not old.retiring:
                self._start(old.slot, replacing=old.pid)
                return
        self._to_reload = None
        self.log("info", "reloaded")

    def _retire(self, pid: int) -> None:
        worker = self.workers.get(pid)
        if worker is not None and not worker.retiring:
            worker.retiring = True
            os.kill(pid, signal.SIGTERM)

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
        for pid in list(self.workers):
            self._retire(pid)
        deadline = time.monotonic() + self.stop_timeout
        while self.workers:
            remaining = deadline - time.monotonic()
            received = signal.sigtimedwait(WATCHED, max(remaining, 0))
            # Out of time, or asked a second time: stop waiting for requests.
            if received is None or received.si_signo in STOP_SIGNALS:
                self._kill_all()
            for worker, code in self._reap():
                self.log("info", "worker stopped", pid=worker.pid, status=code)
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
