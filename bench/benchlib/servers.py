"""Start and stop the two registries under test, each on fresh storage."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

from benchlib import BenchError
from benchlib.registry import HOST, Credentials, RegistryClient, ping

DISTRIBUTION_BINARY = Path("/usr/bin/docker-registry")
DISTRIBUTION_PACKAGE = "docker-registry"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
LOG_TAIL = 2000
AUTH_ADMIN = "admin"
DOCKYARD = "Dockyard"
DISTRIBUTION = "Distribution"
DOCKYARD_AUTH = "Dockyard-auth"

# Debian's stock /etc/docker/registry/config.yml, less its htpasswd auth (it
# needs a password file), listening on loopback with fresh storage. Like
# Dockyard's defaults, it logs every request.
DISTRIBUTION_CONFIG = """\
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: {host}:{port}
  secret: dockyard-bench-only
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RunningServer:
    """A registry process started by the benchmark, in its own process group.

    ``credentials`` is set when the server runs with authentication on; its
    client then sends them as HTTP Basic.
    """

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    credentials: Credentials | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def authorization(self) -> str | None:
        """What this server's clients send: HTTP Basic when auth is on."""
        return None if self.credentials is None else self.credentials.basic()

    def client(self) -> RegistryClient:
        """A new client (close it, or use it in a ``with`` block)."""
        return RegistryClient(self.port, self.authorization)

    @property
    def ready_status(self) -> int:
        """What an anonymous GET /v2/ answers once the server serves."""
        return 200 if self.credentials is None else 401

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-LOG_TAIL:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll GET /v2/ until it answers ``ready_status``; fail if it dies."""
        deadline = time.monotonic() + timeout
        status: int | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with {self.process.returncode} "
                    f"before serving; log tail:\n{self.log_tail()}"
                )
            try:
                status = ping(self.port)
            except httpx.HTTPError:
                status = None
            if status == self.ready_status:
                return
            time.sleep(0.1)
        raise BenchError(
            f"{self.name}: GET /v2/ not {self.ready_status} after {timeout:.0f} s"
        )

    def stop(self) -> None:
        """SIGTERM the server's process group, then SIGKILL if it lingers."""
        if self.process.poll() is None:
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _signal_group(self.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT)
        # Workers may outlive their parent for a moment; the group is ours.
        _signal_group(self.pid, signal.SIGKILL)


def managed(stack: ExitStack, server: RunningServer) -> RunningServer:
    """``server``, stopped when ``stack`` closes, whatever happens next."""
    stack.callback(server.stop)
    return server


def wait_all(servers: Sequence[RunningServer]) -> None:
    """Wait until every server serves, saying where."""
    for server in servers:
        server.wait_ready()
        print(f"{server.name} ready on port {server.port} (pid {server.pid})")


def stop_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so cleanup runs as after Ctrl-C."""
    signal.signal(signal.SIGTERM, _raise_interrupt)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _launch(
    name: str,
    argv: Sequence[str],
    port: int,
    workdir: Path,
    env: dict[str, str] | None = None,
) -> RunningServer:
    log_path = workdir / f"{name.lower()}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=env,
            start_new_session=True,
        )
    return RunningServer(name=name, process=process, port=port, log_path=log_path)


def start_dockyard(
    python: str,
    workdir: Path,
    workers: int,
    credentials: Credentials | None = None,
) -> RunningServer:
    """Start ``python -m dockyard serve`` on fresh storage under ``workdir``.

    Default settings but the listening address and the worker count. With
    ``credentials`` the server runs with authentication on, as
    "Dockyard-auth", and those credentials are its administrator's.
    """
    name = DOCKYARD if credentials is None else DOCKYARD_AUTH
    data_dir = workdir / f"{name.lower()}-data"
    data_dir.mkdir()
    port = free_port()
    argv = [
        python, "-m", "dockyard", "serve",
        "--host", HOST,
        "--port", str(port),
        "--data-dir", str(data_dir),
        "--workers", str(workers),
    ]  # fmt: skip
    env = None if credentials is None else _auth_environment(credentials)
    launched = _launch(name, argv, port, workdir, env)
    launched.credentials = credentials
    return launched


def new_admin_credentials() -> Credentials:
    """The administrator of an auth-enabled server, with a random password."""
    return Credentials(AUTH_ADMIN, secrets.token_urlsafe(24))


def _auth_environment(credentials: Credentials) -> dict[str, str]:
    return dict(
        os.environ,
        DOCKYARD_AUTH_ENABLED="true",
        DOCKYARD_AUTH_ADMIN_USERNAME=credentials.username,
        DOCKYARD_AUTH_ADMIN_PASSWORD=credentials.password,
    )


def start_distribution(binary: Path, workdir: Path) -> RunningServer:
    """Start Distribution with filesystem storage under ``workdir``."""
    root = workdir / "distribution-data"
    root.mkdir()
    port = free_port()
    config = workdir / "distribution.yml"
    config.write_text(DISTRIBUTION_CONFIG.format(root=root, host=HOST, port=port))
    argv = [str(binary), "serve", str(config)]
    return _launch(DISTRIBUTION, argv, port, workdir)


def ensure_distribution() -> Path:
    """Return the docker-registry binary, installing Debian's package if needed."""
    if DISTRIBUTION_BINARY.exists():
        return DISTRIBUTION_BINARY
    if os.geteuid() != 0:
        raise BenchError(
            f"{DISTRIBUTION_BINARY} is missing and installing it needs root: "
            f"run `sudo apt-get install -y {DISTRIBUTION_PACKAGE}` first"
        )
    print(f"installing {DISTRIBUTION_PACKAGE} with apt-get ...", flush=True)
    _apt_install(DISTRIBUTION_PACKAGE)
    if not DISTRIBUTION_BINARY.exists():
        raise BenchError(f"apt-get ran but {DISTRIBUTION_BINARY} is still missing")
    return DISTRIBUTION_BINARY


def _apt_install(package: str) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", package]):
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        if done.returncode != 0:
            raise BenchError(f"{' '.join(argv)} failed:\n{done.stderr[-LOG_TAIL:]}")


def try_apt_install(package: str, binary: str) -> bool:
    """Install ``package`` if ``binary`` is missing and we are root; say if present."""
    if shutil.which(binary):
        return True
    if os.geteuid() != 0:
        return False
    print(f"installing {package} with apt-get ...", flush=True)
    try:
        _apt_install(package)
    except (BenchError, OSError, subprocess.TimeoutExpired) as error:
        print(f"could not install {package}: {error}", flush=True)
        return False
    return shutil.which(binary) is not None
