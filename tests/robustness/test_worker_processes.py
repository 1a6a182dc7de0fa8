"""The process tree of `dockyard serve`: a supervisor and its workers.

A worker that dies is replaced while the others keep answering; SIGHUP replaces
every worker while the registry keeps answering; SIGTERM stops every process;
workers whose supervisor was killed stop on their own.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.server import RegistryServer


def _workers(server: RegistryServer) -> list[int]:
    assert server.process is not None
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sorted(int(child) for child in children)


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _ready_workers(server: RegistryServer) -> int:
    return server.logs().count("worker ready")


def _wait_for(condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_killed_worker_is_replaced_and_the_registry_keeps_answering(
    crash_two_worker_server: RegistryServer,
) -> None:
    server = crash_two_worker_server
    # A worker that dies before it is ready counts as a failed start.
    _wait_for(lambda: _ready_workers(server) == 2)
    victim, survivor = _workers(server)

    os.kill(victim, signal.SIGKILL)

    _wait_for(lambda: len(_workers(server)) == 2 and victim not in _workers(server))
    assert survivor in _workers(server)
    for _ in range(20):
        assert httpx.get(f"{server.url}/v2/", timeout=5).status_code == 200
    assert "worker died, starting another" in server.logs()


def test_new_connections_do_not_wait_for_a_stuck_worker(
    crash_two_worker_server: RegistryServer,
) -> None:
    # The workers accept on one shared socket: a worker that cannot (stopped
    # here; a blocked event loop alike) leaves the connections to the others,
    # where with a socket of its own it would hold its share until it woke.
    server = crash_two_worker_server
    _wait_for(lambda: _ready_workers(server) == 2)
    stuck, _ = _workers(server)
    os.kill(stuck, signal.SIGSTOP)
    try:
        for _ in range(20):
            assert httpx.get(f"{server.url}/v2/", timeout=3).status_code == 200
    finally:
        os.kill(stuck, signal.SIGCONT)


def test_sighup_replaces_every_worker_while_the_registry_answers(
    crash_two_worker_server: RegistryServer,
) -> None:
    server = crash_two_worker_server
    _wait_for(lambda: _ready_workers(server) == 2)
    before = _workers(server)
    statuses: list[int | str] = []
    reloading = threading.Event()

    def ask() -> int | str:
        for attempt in range(2):
            try:
                return httpx.get(f"{server.url}/v2/", timeout=5).status_code
            except httpx.RemoteProtocolError as error:
                # A worker stopping closes the connections whose request it
                # has not read yet, one it accepted in its last instant among
                # them; HTTP clients send such a GET again on a new one.
                if attempt:
                    return repr(error)
            except httpx.TransportError as error:
                return repr(error)
        raise AssertionError("unreachable")

    def ask_while_reloading() -> None:
        while not reloading.is_set():
            statuses.append(ask())

    # Each request on a new connection, from several clients at once.
    askers = [threading.Thread(target=ask_while_reloading) for _ in range(4)]
    for asking in askers:
        asking.start()
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGHUP)
    _wait_for(lambda: "reloaded" in server.logs())
    # The last old worker was asked to stop; it finishes its requests first.
    _wait_for(lambda: not any(_running(pid) for pid in before))
    reloading.set()
    for asking in askers:
        asking.join()

    after = _workers(server)
    assert len(after) == 2 and not set(after) & set(before)
    assert statuses and set(statuses) == {200}


def test_sigterm_stops_every_process(tmp_path: Path) -> None:
    server = RegistryServer(tmp_path / "data", workers=2).start()
    _wait_for(lambda: len(_workers(server)) == 2)
    workers = _workers(server)

    server.stop()

    assert server.process is not None and server.process.returncode == 0
    assert not any(_running(pid) for pid in workers)


def test_workers_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    server = RegistryServer(tmp_path / "data", workers=2).start()
    try:
        _wait_for(lambda: len(_workers(server)) == 2)
        workers = _workers(server)
        assert server.process is not None

        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=5)

        _wait_for(lambda: not any(_running(pid) for pid in workers))
        assert "supervisor gone, stopping" in server.logs()
    finally:
        server.kill()
