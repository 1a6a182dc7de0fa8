"""Drive many concurrent keep-alive requests at one URL.

Two generators: ``hey`` (Go, from Debian) when installed, else a fallback of
one process per core, each multiplexing raw keep-alive sockets with a
selector. Either runs for a duration or for a fixed number of requests. The
CPU time the generator burnt is measured through the rusage of reaped
children, so the report can show whether it competed with the server.
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

GRACE_SECONDS = 60.0
REQUEST_TIMEOUT = 10
MAX_FAILED_SHARE = 0.01
HEADER_END = b"\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"
CHUNKED = re.compile(rb"\r\ntransfer-encoding:\s*chunked", re.IGNORECASE)


@dataclass(frozen=True)
class LoadSpec:
    """What to send, how hard, and for how long or how many times."""

    url: str
    method: str
    headers: dict[str, str]
    concurrency: int
    duration: float | None = None
    requests: int | None = None
    expect: int = 200

    def __post_init__(self) -> None:
        if (self.duration is None) == (self.requests is None):
            raise ValueError("a load runs for a duration or a number of requests")

    @property
    def limit_seconds(self) -> float:
        """How long the generator may take before it counts as hung."""
        return (self.duration or 0.0) + GRACE_SECONDS + (self.requests or 0) / 100


@dataclass
class LoadResult:
    """Counts and cost of one load run.

    ``ok`` counts answers with the expected status; ``body_bytes`` sums their
    Content-Length (hey's "Total data", for HEAD too).
    """

    tool: str
    seconds: float
    ok: int
    failed: int
    statuses: dict[str, int] = field(default_factory=dict)
    body_bytes: int = 0
    generator_cpu_seconds: float = 0.0

    @property
    def requests_per_second(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def check(self, length: int | None = None) -> None:
        """Fail on more than 1 % failures, or on answers of the wrong size.

        With ``length``, every answer must have carried that Content-Length:
        hey counts a body shorter than its Content-Length as a failure, so
        together this shows every answer delivered the expected bytes.
        """
        attempted = self.ok + self.failed
        if self.ok == 0 or self.failed > MAX_FAILED_SHARE * attempted:
            raise BenchError(
                f"{self.failed} of {attempted} requests failed "
                f"(statuses {self.statuses})"
            )
        if (
            length is not None
            and self.failed == 0
            and self.body_bytes != (self.ok * length)
        ):
            raise BenchError(
                f"{self.ok} answers carried {self.body_bytes} bytes, "
                f"expected {length} each"
            )


def children_cpu_seconds() -> float:
    """User plus system CPU time of all reaped child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_load(spec: LoadSpec, tool: str) -> LoadResult:
    """Run the load with ``hey`` or ``python`` and time its CPU use."""
    before = children_cpu_seconds()
    result = _run_hey(spec) if tool == "hey" else _run_python(spec)
    result.generator_cpu_seconds = children_cpu_seconds() - before
    return result


def _run_hey(spec: LoadSpec) -> LoadResult:
    argv = ["hey", "-c", str(spec.concurrency), "-m", spec.method]
    if spec.duration is not None:
        argv += ["-z", f"{spec.duration}s"]
    else:
        argv += ["-n", str(max(spec.requests or 0, spec.concurrency))]
    argv += ["-t", str(REQUEST_TIMEOUT), "-disable-compression"]
    for name, value in spec.headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(spec.url)
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=spec.limit_seconds,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"hey failed ({done.returncode}): {done.stderr[-500:]}")
    return parse_hey(done.stdout, spec.expect)


def parse_hey(report: str, expect: int = 200) -> LoadResult:
    """Read the totals out of hey's default summary."""
    total = re.search(r"Total:\s+([\d.]+) secs", report)
    if total is None:
        raise BenchError(f"cannot read hey's summary:\n{report[-500:]}")
    data = re.search(r"Total data:\s+(\d+) bytes", report)
    statuses = {
        code: int(count)
        for code, count in re.findall(r"\[(\d{3})\]\s+(\d+) responses", report)
    }
    _, _, error_section = report.partition("Error distribution:")
    errors = sum(
        int(count) for count in re.findall(r"^\s+\[(\d+)\]\s+\D", error_section, re.M)
    )
    ok = statuses.get(str(expect), 0)
    return LoadResult(
        tool="hey",
        seconds=float(total.group(1)),
        ok=ok,
        failed=sum(statuses.values()) - ok + errors,
        statuses=statuses,
        body_bytes=int(data.group(1)) if data else 0,
    )


def _run_python(spec: LoadSpec) -> LoadResult:
    parts = urlsplit(spec.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    request = _raw_request(spec.method, target, f"{host}:{port}", spec.headers)
    processes = max(1, min(multiprocessing.cpu_count(), spec.concurrency))
    sockets = _split(spec.concurrency, processes)
    quotas = _split(spec.requests, processes) if spec.requests else [0] * processes

    context = multiprocessing.get_context("fork")
    pipes: list[Connection] = []
    workers = []
    for count, quota in zip(sockets, quotas, strict=True):
        receiver, sender = context.Pipe(duplex=False)
        job = _Job(host, port, request, spec.method == "HEAD", count, quota)
        worker = context.Process(
            target=_python_worker, args=(job, spec.duration, sender)
        )
        worker.start()
        sender.close()
        pipes.append(receiver)
        workers.append(worker)
    return _collect(pipes, workers, spec)


def _split(total: int, parts: int) -> list[int]:
    shares = [total // parts] * parts
    for index in range(total % parts):
        shares[index] += 1
    return shares


def _collect(
    pipes: Sequence[Connection],
    workers: Sequence[multiprocessing.process.BaseProcess],
    spec: LoadSpec,
) -> LoadResult:
    statuses: Counter[str] = Counter()
    failed = 0
    body_bytes = 0
    seconds = 0.0
    for receiver, worker in zip(pipes, workers, strict=True):
        if not receiver.poll(spec.limit_seconds):
            worker.kill()
            raise BenchError("a load worker did not report back in time")
        counts, errors, size, elapsed = receiver.recv()
        statuses.update(counts)
        failed += errors
        body_bytes += size
        seconds = max(seconds, elapsed)
        worker.join(timeout=10)
    ok = statuses.get(str(spec.expect), 0)
    failed += sum(statuses.values()) - ok
    return LoadResult("python", seconds, ok, failed, dict(statuses), body_bytes)


def _raw_request(method: str, target: str, host: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class _Job:
    """One load process's connections, request and (optional) quota."""

    host: str
    port: int
    request: bytes
    head: bool
    sockets: int
    quota: int
    sent: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    body_bytes: int = 0

    def may_send(self) -> bool:
        return not self.quota or self.sent < self.quota

    def finished(self) -> bool:
        return bool(self.quota) and self.statuses.total() + self.errors >= self.quota


def _python_worker(job: _Job, duration: float | None, report: Connection) -> None:
    """One load process: ``job.sockets`` connections, one request in flight each."""
    selector = selectors.DefaultSelector()
    start = time.monotonic()
    deadline = start + duration if duration else float("inf")
    try:
        for _ in range(job.sockets):
            _open(selector, job)
        while time.monotonic() < deadline and not job.finished():
            for key, _ in selector.select(timeout=0.5):
                if not _on_readable(selector, key, job):
                    job.errors += 1
                    _open(selector, job)
    except OSError:
        # The server stopped accepting connections: report what was counted.
        job.errors += 1
    elapsed = time.monotonic() - start
    report.send((dict(job.statuses), job.errors, job.body_bytes, elapsed))
    report.close()
    selector.close()


def _open(selector: selectors.BaseSelector, job: _Job) -> None:
    if not job.may_send():
        return
    conn = socket.create_connection((job.host, job.port), timeout=REQUEST_TIMEOUT)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.sendall(job.request)
    job.sent += 1
    selector.register(conn, selectors.EVENT_READ, bytearray())


def _on_readable(
    selector: selectors.BaseSelector, key: selectors.SelectorKey, job: _Job
) -> bool:
    """Read what arrived; on a full response count it and send the next request.

    Bodies end by Content-Length or, in chunked answers, with the last
    chunk; like hey, a chunked body counts no bytes. Returns False when the
    connection broke and has been dropped.
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
    end = buffer.find(HEADER_END)
    if end < 0:
        return True
    head = bytes(buffer[:end])
    body = buffer[end + len(HEADER_END) :]
    length = _content_length(head)
    if job.head:
        complete = True
    elif CHUNKED.search(head):
        # One request in flight, so the last chunk ends the buffer.
        length = 0
        complete = body == LAST_CHUNK or body.endswith(b"\r\n" + LAST_CHUNK)
    else:
        complete = len(body) >= length
    if not complete:
        return True
    job.statuses[buffer[9:12].decode("latin-1")] += 1
    job.body_bytes += length
    buffer.clear()
    if job.may_send():
        conn.sendall(job.request)
        job.sent += 1
    return True


def _content_length(head: bytes) -> int:
    match = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.IGNORECASE)
    return int(match.group(1)) if match else 0
