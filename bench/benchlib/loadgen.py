"""Drive many concurrent keep-alive HEAD requests at one URL for a while.

Two generators: ``hey`` (Go, from Debian) when installed, else a fallback of
several processes, each multiplexing raw keep-alive sockets with a selector.
Either way the CPU time the generator burnt is measured, through the rusage of
reaped children, so the report can show whether it competed with the server.
"""

from __future__ import annotations

import multiprocessing
import re
import resource
import selectors
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import cast
from urllib.parse import urlsplit

from benchlib import BenchError

MAX_REQUESTS_PER_PROCESS = 50_000_000
HEY_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class LoadSpec:
    """What to send: one URL with fixed headers, how hard and for how long."""

    url: str
    headers: dict[str, str]
    concurrency: int
    duration: float


@dataclass
class LoadResult:
    """Counts and cost of one load run."""

    tool: str
    seconds: float
    ok: int
    failed: int
    statuses: dict[str, int] = field(default_factory=dict)
    generator_cpu_seconds: float = 0.0

    @property
    def requests_per_second(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


def children_cpu_seconds() -> float:
    """User plus system CPU time of all reaped child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_load(spec: LoadSpec, tool: str) -> LoadResult:
    """Run the HEAD load with ``hey`` or ``python`` and time its CPU use."""
    before = children_cpu_seconds()
    result = _run_hey(spec) if tool == "hey" else _run_python(spec)
    result.generator_cpu_seconds = children_cpu_seconds() - before
    return result


def _run_hey(spec: LoadSpec) -> LoadResult:
    argv = ["hey", "-z", f"{spec.duration}s", "-c", str(spec.concurrency)]
    argv += ["-m", "HEAD", "-t", "10"]
    for name, value in spec.headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(spec.url)
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=spec.duration + HEY_GRACE_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"hey failed ({done.returncode}): {done.stderr[-500:]}")
    return parse_hey(done.stdout)


def parse_hey(report: str) -> LoadResult:
    """Read the totals out of hey's default summary."""
    total = re.search(r"Total:\s+([\d.]+) secs", report)
    if total is None:
        raise BenchError(f"cannot read hey's summary:\n{report[-500:]}")
    statuses = {
        code: int(count)
        for code, count in re.findall(r"\[(\d{3})\]\s+(\d+) responses", report)
    }
    errors = sum(
        int(count)
        for count in re.findall(r"^\s+\[(\d+)\]\s+\D", _errors_section(report), re.M)
    )
    ok = statuses.get("200", 0)
    return LoadResult(
        tool="hey",
        seconds=float(total.group(1)),
        ok=ok,
        failed=sum(statuses.values()) - ok + errors,
        statuses=statuses,
    )


def _errors_section(report: str) -> str:
    _, _, errors = report.partition("Error distribution:")
    return errors


def _run_python(spec: LoadSpec) -> LoadResult:
    parts = urlsplit(spec.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = _raw_head(parts.path, f"{host}:{port}", spec.headers)
    processes = max(1, min(multiprocessing.cpu_count(), spec.concurrency))
    shares = [spec.concurrency // processes] * processes
    for index in range(spec.concurrency % processes):
        shares[index] += 1

    context = multiprocessing.get_context("fork")
    pipes: list[Connection] = []
    workers = []
    for sockets in shares:
        receiver, sender = context.Pipe(duplex=False)
        worker = context.Process(
            target=_python_worker,
            args=(host, port, request, sockets, spec.duration, sender),
        )
        worker.start()
        sender.close()
        pipes.append(receiver)
        workers.append(worker)
    return _collect(pipes, workers, spec.duration)


def _collect(
    pipes: Sequence[Connection],
    workers: Sequence[multiprocessing.process.BaseProcess],
    duration: float,
) -> LoadResult:
    statuses: Counter[str] = Counter()
    failed = 0
    seconds = 0.0
    for receiver, worker in zip(pipes, workers, strict=True):
        if not receiver.poll(duration + HEY_GRACE_SECONDS):
            worker.kill()
            raise BenchError("a load worker did not report back in time")
        counts, errors, elapsed = receiver.recv()
        statuses.update(counts)
        failed += errors
        seconds = max(seconds, elapsed)
        worker.join(timeout=10)
    ok = statuses.get("200", 0)
    failed += sum(statuses.values()) - ok
    return LoadResult("python", seconds, ok, failed, dict(statuses))


def _raw_head(path: str, host: str, headers: dict[str, str]) -> bytes:
    lines = [f"HEAD {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _python_worker(
    host: str,
    port: int,
    request: bytes,
    sockets: int,
    duration: float,
    report: Connection,
) -> None:
    """One load process: ``sockets`` connections, one request in flight each."""
    selector = selectors.DefaultSelector()
    statuses: Counter[str] = Counter()
    errors = 0
    start = time.monotonic()
    deadline = start + duration
    try:
        for _ in range(sockets):
            _open(selector, host, port, request)
        while time.monotonic() < deadline:
            if statuses.total() >= MAX_REQUESTS_PER_PROCESS:
                break
            for key, _ in selector.select(timeout=0.5):
                if not _on_readable(selector, key, statuses, request):
                    errors += 1
                    _open(selector, host, port, request)
    except OSError:
        # The server stopped accepting connections: report what was counted.
        errors += 1
    report.send((dict(statuses), errors, time.monotonic() - start))
    report.close()
    selector.close()


def _open(
    selector: selectors.BaseSelector, host: str, port: int, request: bytes
) -> None:
    conn = socket.create_connection((host, port), timeout=10)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.sendall(request)
    selector.register(conn, selectors.EVENT_READ, bytearray())


def _on_readable(
    selector: selectors.BaseSelector,
    key: selectors.SelectorKey,
    statuses: Counter[str],
    request: bytes,
) -> bool:
    """Read what arrived; on a full response count it and send the next request.

    HEAD answers carry no body, so a response ends at the blank line. Returns
    False when the connection broke and has been dropped.
    """
    conn = cast(socket.socket, key.fileobj)
    buffer: bytearray = key.data
    try:
        chunk = conn.recv(65536)
    except OSError:
        chunk = b""
    if not chunk:
        selector.unregister(conn)
        conn.close()
        return False
    buffer += chunk
    if b"\r\n\r\n" in buffer:
        statuses[buffer[9:12].decode("latin-1")] += 1
        buffer.clear()
        conn.sendall(request)
    return True
