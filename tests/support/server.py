"""Start and stop a real `dockyard serve` process for tests.

Tests talk to the registry only over HTTP, the way clients do; this module owns
the process: free port, data directory, readiness wait, graceful stop and SIGKILL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

READY_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RegistryServer:
    """One `dockyard serve` process on loopback, restartable on the same data."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        workers: int = 1,
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        scheme: str = "http",
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.workers = workers
        self.extra_args = extra_args
        self.env = env or {}
        self.scheme = scheme
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def start(self) -> RegistryServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "dockyard",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--workers",
            str(self.workers),
            *self.extra_args,
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"dockyard exited with {self.process.returncode}:\n"
                    + self.log_path.read_text(errors="replace")[-4000:]
                )
            try:
                # 401 is a ready registry with authentication switched on; TLS
                # is not verified here, only that the server answers.
                answer = httpx.get(f"{self.url}/v2/", timeout=1.0, verify=False)
                if answer.status_code in (200, 401):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("dockyard did not become ready in time")

    def stop(self) -> None:
        """Stop gracefully (SIGTERM to the whole process group)."""
        self._signal(signal.SIGTERM, wait=15.0)

    def kill(self) -> None:
        """Crash the server: SIGKILL to every process it started."""
        self._signal(signal.SIGKILL, wait=5.0)

    def _signal(self, sig: signal.Signals, wait: float) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5.0)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
