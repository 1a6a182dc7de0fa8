"""Run one client job over many items with concurrent Python clients.

The clients are threads spread over several processes (one per core at most),
so neither the GIL nor one core limits them. Each thread has its own
keep-alive connection. Timing starts only once every process is up, and each
process reports the CPU time it spent, so the report can show the clients'
share of the machine next to the server's.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import resource
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import Generic, TypeVar, cast

from benchlib import BenchError
from benchlib.registry import RegistryClient

T = TypeVar("T")
R = TypeVar("R")
Job = Callable[[RegistryClient, T], R]

START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Clients:
    """Where to send requests and how many clients to use."""

    port: int
    count: int
    authorization: str | None = None
    processes: int | None = None

    def layout(self) -> list[int]:
        """Threads per process: at most one process per core."""
        processes = self.processes or min(self.count, os.cpu_count() or 1)
        processes = max(1, min(processes, self.count))
        threads = [self.count // processes] * processes
        for index in range(self.count % processes):
            threads[index] += 1
        return threads


@dataclass
class ParallelRun(Generic[R]):
    """Results of a parallel run, its wall time and the clients' CPU time."""

    results: list[R]
    errors: list[str]
    seconds: float
    client_cpu_seconds: float
    processes: int
    threads: int

    @property
    def client_cores(self) -> float:
        return self.client_cpu_seconds / max(self.seconds, 1e-9)

    def check(self, what: str) -> None:
        """Fail when any item failed, quoting the first few errors."""
        if self.errors:
            shown = "; ".join(self.errors[:3])
            raise BenchError(f"{len(self.errors)} {what} failed: {shown}")


def run_parallel(
    job: Job[T, R], items: Sequence[T], clients: Clients, timeout: float = 3600.0
) -> ParallelRun[R]:
    """Run ``job`` on every item; items are dealt out round-robin to processes.

    Processes are forked, so ``job`` and ``items`` need not be picklable, but
    results must be.
    """
    layout = clients.layout()
    context = multiprocessing.get_context("fork")
    go = context.Event()
    pipes: list[Connection] = []
    workers = []
    for index, threads in enumerate(layout):
        receiver, sender = context.Pipe(duplex=False)
        share = list(items[index :: len(layout)])
        worker = context.Process(
            target=_process_main, args=(job, share, clients, threads, go, sender)
        )
        worker.start()
        sender.close()
        pipes.append(receiver)
        workers.append(worker)
    try:
        for receiver in pipes:
            _expect(receiver, START_TIMEOUT, "ready")
        go.set()
        return _gather(pipes, timeout, layout)
    finally:
        for worker in workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.kill()
                worker.join()


def _expect(receiver: Connection, timeout: float, what: str) -> object:
    if not receiver.poll(timeout):
        raise BenchError(f"a client process did not report {what} in {timeout:.0f} s")
    try:
        return receiver.recv()
    except EOFError as error:
        raise BenchError(f"a client process died before reporting {what}") from error


def _gather(
    pipes: list[Connection], timeout: float, layout: list[int]
) -> ParallelRun[R]:
    results: list[R] = []
    errors: list[str] = []
    starts: list[float] = []
    ends: list[float] = []
    cpu = 0.0
    for receiver in pipes:
        report = _expect(receiver, timeout, "results")
        if not isinstance(report, _Report):
            raise BenchError(f"a client process sent {report!r}")
        results.extend(cast(list[R], report.results))
        errors.extend(report.errors)
        starts.append(report.start)
        ends.append(report.end)
        cpu += report.cpu_seconds
    return ParallelRun(
        results=results,
        errors=errors,
        seconds=max(ends) - min(starts),
        client_cpu_seconds=cpu,
        processes=len(layout),
        threads=sum(layout),
    )


@dataclass
class _Report:
    results: list[object]
    errors: list[str]
    start: float
    end: float
    cpu_seconds: float


def _process_main(
    job: Job[T, R],
    items: list[T],
    clients: Clients,
    threads: int,
    go: Event,
    report: Connection,
) -> None:
    """One client process: ``threads`` threads draining a shared queue."""
    work: queue.SimpleQueue[T] = queue.SimpleQueue()
    for item in items:
        work.put(item)
    connections = [
        RegistryClient(clients.port, clients.authorization) for _ in range(threads)
    ]
    results: list[object] = []
    errors: list[str] = []
    lock = threading.Lock()

    def drain(client: RegistryClient) -> None:
        while True:
            try:
                item = work.get_nowait()
            except queue.Empty:
                return
            try:
                result: object = job(client, item)
            except Exception as error:  # any failure is the item's, reported
                with lock:
                    errors.append(f"{type(error).__name__}: {error}")
            else:
                with lock:
                    results.append(result)

    report.send("ready")
    go.wait()
    cpu_before = _own_cpu_seconds()
    start = time.monotonic()
    pool = [threading.Thread(target=drain, args=(c,)) for c in connections]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    end = time.monotonic()
    cpu = _own_cpu_seconds() - cpu_before
    for client in connections:
        client.close()
    report.send(_Report(results, errors, start, end, cpu))
    report.close()


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
