"""A throwaway PostgreSQL cluster on loopback, for the scale-out backend tests.

Debian's `postgresql` package brings the binaries but starts no server here, and
initdb refuses to run as root, so the cluster belongs to the `postgres` user the
package creates, in a temporary folder, on its own port.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.server import free_port

USER = "dockyard"


def _binaries() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not candidates:
        message = "PostgreSQL is not installed (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return candidates[-1].parent


def _as_postgres(*command: str | Path) -> None:
    runner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(
        [*runner, *map(str, command)],
        check=True,
        capture_output=True,
        timeout=60,
    )


class PostgresCluster:
    def __init__(self) -> None:
        self.port = free_port()
        self.bin = _binaries()
        self.root = Path(tempfile.mkdtemp(prefix="dockyard-pg-"))
        self.data = self.root / "data"

    @property
    def admin_url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresCluster:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        _as_postgres(self.bin / "initdb", "-D", self.data, "-A", "trust", "-U", USER)
        self._control("start")
        return self

    def restart(self) -> None:
        """Stop (dropping every client connection) and start again, same port."""
        self._control("restart", "-m", "fast")

    def _control(self, action: str, *extra: str) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        _as_postgres(
            self.bin / "pg_ctl",
            "-D",
            self.data,
            "-o",
            options,
            "-l",
            self.root / "log",
            "-w",
            action,
            *extra,
        )

    def create_database(self, name: str) -> str:
        _as_postgres(
            self.bin / "createdb",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            USER,
            name,
        )
        return self.url(name)

    def stop(self) -> None:
        try:
            _as_postgres(self.bin / "pg_ctl", "-D", self.data, "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
