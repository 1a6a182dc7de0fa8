"""Database engines for the supported backends, tuned per dialect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 30_000

# How each backend's URL is spelled for the async driver the server uses and for
# the sync driver the migrations use.
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'metadata.db').resolve()}"


def _with_driver(url: str, drivers: dict[str, str]) -> sa.URL:
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend not in drivers:
        raise ValueError(f"unsupported database backend {backend!r}")
    return parsed.set(drivername=drivers[backend])


def async_url(url: str) -> sa.URL:
    return _with_driver(url, _ASYNC_DRIVERS)


def sync_url(url: str) -> sa.URL:
    return _with_driver(url, _SYNC_DRIVERS)


def _tune_sqlite(engine: sa.Engine) -> None:
    """WAL for concurrent readers, and explicit BEGINs so writers can lock early.

    pysqlite's own transaction handling starts transactions lazily and cannot
    take the write lock up front; a write transaction that read first could then
    fail on upgrade. Writers ask for BEGIN IMMEDIATE through an execution option.
    """

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: sa.Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def create_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(async_url(url), pool_pre_ping=False)
    if engine.dialect.name == "sqlite":
        _tune_sqlite(engine.sync_engine)
    return engine


def create_sync_engine(url: str) -> sa.Engine:
    engine = sa.create_engine(sync_url(url))
    if engine.dialect.name == "sqlite":
        _tune_sqlite(engine)
    return engine
