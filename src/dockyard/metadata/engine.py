"""Database engines for the supported backends, tuned per dialect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Every commit reaches the disk before it is acknowledged (see executor.py for
# the writes that ask for less).
SQLITE_SYNCHRONOUS = "FULL"
# Connections per process to a server database.
POOL_SIZE = 10
POOL_OVERFLOW = 20

# The driver each backend's URL is given when none is named.
_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'metadata.db').resolve()}"


def sync_url(url: str) -> sa.URL:
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend not in _DRIVERS:
        raise ValueError(f"unsupported database backend {backend!r}")
    if parsed.drivername == backend:
        parsed = parsed.set(drivername=_DRIVERS[backend])
    return parsed


def _tune_sqlite(engine: sa.Engine) -> None:
    """WAL for concurrent readers, and explicit BEGINs so writers can lock early.

    pysqlite's own transaction handling starts transactions lazily and cannot
    take the write lock up front; a write transaction that read first could then
    fail on upgrade. Writers ask for BEGIN IMMEDIATE through the `sqlite_begin`
    execution option; inline readers ask for no transaction at all (None).
    """

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: sa.Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode is not None:
            connection.exec_driver_sql(f"BEGIN {mode}")


def create_sync_engine(url: str) -> sa.Engine:
    parsed = sync_url(url)
    if parsed.get_backend_name() != "sqlite":
        # No ping before each checkout: it doubled the round trips of every
        # read. A connection lost to a database restart fails the request using
        # it (503), and the pool then replaces all of its connections.
        return sa.create_engine(parsed, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
    # SQLite connections move between the event loop and writer threads.
    engine = sa.create_engine(parsed, connect_args={"check_same_thread": False})
    _tune_sqlite(engine)
    return engine
