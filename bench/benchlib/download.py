"""Blob downloads lean enough that the client does not set the pace.

httpx copies every byte through its parser (h11) and hashes on the thread that
receives: a 256 MiB pull on loopback cost the client a whole core, so the
benchmark measured the client. Here the body goes straight from the socket into
reused 1 MiB buffers (`recv_into`) while a second thread hashes the previous
ones, in order. Only what a blob GET needs: one request on its own connection,
a 200 with a Content-Length.
"""

from __future__ import annotations

import hashlib
import socket
from concurrent.futures import Future, ThreadPoolExecutor

from benchlib import BenchError

BUFFER = 1024 * 1024
# Buffers in flight: one being filled, the others waiting for the hasher.
BUFFERS = 4
MAX_HEADER = 64 * 1024


def download(
    host: str, port: int, path: str, headers: dict[str, str], timeout: float
) -> tuple[int, str]:
    """GET ``path``; return the body's size and sha256 digest."""
    request = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    request += [f"{name}: {value}" for name, value in headers.items()]
    with (
        socket.create_connection((host, port), timeout=timeout) as conn,
        ThreadPoolExecutor(max_workers=1) as hasher,
    ):
        conn.sendall(("\r\n".join(request) + "\r\n\r\n").encode())
        length, start = _read_head(conn)
        sha = hashlib.sha256()
        hasher.submit(sha.update, start)
        received = len(start)
        buffers = [memoryview(bytearray(BUFFER)) for _ in range(BUFFERS)]
        hashing: list[Future[None]] = []
        turn = 0
        while received < length:
            buffer = buffers[turn % BUFFERS]
            turn += 1
            filled = _fill(conn, buffer, length - received)
            if len(hashing) == BUFFERS - 1:
                hashing.pop(0).result()  # the buffer filled next is free again
            hashing.append(hasher.submit(sha.update, buffer[:filled]))
            received += filled
        for pending in hashing:
            pending.result()
    return received, "sha256:" + sha.hexdigest()


def _read_head(conn: socket.socket) -> tuple[int, bytes]:
    """The Content-Length of a 200 answer, and the body bytes read with the head."""
    head = b""
    while b"\r\n\r\n" not in head:
        piece = conn.recv(MAX_HEADER)
        if not piece or len(head) > MAX_HEADER:
            raise BenchError("blob GET: connection closed before the headers")
        head += piece
    header, _, start = head.partition(b"\r\n\r\n")
    status, *fields = header.decode("latin-1").split("\r\n")
    if status.split()[1:2] != ["200"]:
        raise BenchError(f"blob GET answered {status!r}")
    for field in fields:
        name, _, value = field.partition(":")
        if name.strip().lower() == "content-length":
            return int(value), start
    raise BenchError("blob GET: the answer has no Content-Length")


def _fill(conn: socket.socket, buffer: memoryview, wanted: int) -> int:
    """Receive up to ``wanted`` bytes into ``buffer``; the count received."""
    filled, limit = 0, min(len(buffer), wanted)
    while filled < limit:
        count = conn.recv_into(buffer[filled:limit])
        if not count:
            raise BenchError("blob GET: connection closed before the whole body")
        filled += count
    return filled
