"""How queries reach the database without stalling the event loop more than needed.

Queries are plain functions of a SQLAlchemy `Connection`; an executor decides
where each one runs.

- SQLite: reads run inline on the event loop. In WAL mode a read never waits for
  a writer and takes microseconds, so a thread hop would cost more than the
  query. Writes may wait for another process's write lock, so they run in a
  worker thread and begin with `BEGIN IMMEDIATE`, which takes that lock up front.
- PostgreSQL: every query goes over the network, so reads and writes both run in
  worker threads, on a connection pool shared by the process.

A write may be marked not `durable`: bookkeeping that a power loss may roll
back without harm (an upload session's creation or progress: the client
resumes from what the registry then reports). Such commits skip the flush to
disk (SQLite `synchronous=NORMAL`, PostgreSQL `synchronous_commit=off`); the
database stays consistent either way, and the next durable commit flushes
them too. Blobs, manifests and tags are always written durably.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol, TypeVar

import sqlalchemy as sa
from anyio import to_thread

from dockyard.metadata.engine import SQLITE_SYNCHRONOUS, create_sync_engine

T = TypeVar("T")


class Executor(Protocol):
    dialect: str

    async def read(self, query: Callable[[sa.Connection], T]) -> T: ...
    async def write(
        self, change: Callable[[sa.Connection], T], *, durable: bool = True
    ) -> T: ...
    async def close(self) -> None: ...


class SqliteExecutor:
    def __init__(self, url: str) -> None:
        self.engine = create_sync_engine(url)
        self.dialect = self.engine.dialect.name
        self._reader: sa.Connection | None = None
        self._reader_thread: int | None = None

    def _read_connection(self) -> sa.Connection:
        # One connection serves every inline read of the event loop's thread; a
        # read never awaits, so two reads never interleave on it.
        if self._reader is None or self._reader_thread != threading.get_ident():
            self._reader = self.engine.connect().execution_options(sqlite_begin=None)
            self._reader_thread = threading.get_ident()
        return self._reader

    async def read(self, query: Callable[[sa.Connection], T]) -> T:
        conn = self._read_connection()
        try:
            return query(conn)
        finally:
            conn.rollback()

    async def write(
        self, change: Callable[[sa.Connection], T], *, durable: bool = True
    ) -> T:
        return await to_thread.run_sync(self._write, change, durable)

    def _write(self, change: Callable[[sa.Connection], T], durable: bool) -> T:
        with self.engine.connect() as conn:
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            if durable:
                with conn.begin():
                    return change(conn)
            # On the driver's connection: through SQLAlchemy, the statement
            # would begin the transaction, where SQLite refuses this pragma.
            driver = conn.connection.driver_connection
            assert driver is not None
            driver.execute("PRAGMA synchronous=NORMAL")
            try:
                with conn.begin():
                    return change(conn)
            finally:
                driver.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self.engine.dispose()


class ThreadedExecutor:
    """For server databases: each query in a worker thread, pooled connections."""

    def __init__(self, url: str) -> None:
        self.engine = create_sync_engine(url)
        self.dialect = self.engine.dialect.name
        self._reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    async def read(self, query: Callable[[sa.Connection], T]) -> T:
        return await to_thread.run_sync(self._read, query)

    async def write(
        self, change: Callable[[sa.Connection], T], *, durable: bool = True
    ) -> T:
        return await to_thread.run_sync(self._write, change, durable)

    def _read(self, query: Callable[[sa.Connection], T]) -> T:
        # Autocommit: no BEGIN and COMMIT round trips around a lone SELECT.
        with self._reader.connect() as conn:
            return query(conn)

    def _write(self, change: Callable[[sa.Connection], T], durable: bool) -> T:
        with self.engine.begin() as conn:
            if not durable:
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            return change(conn)

    async def close(self) -> None:
        self.engine.dispose()


def create_executor(url: str) -> Executor:
    if sa.make_url(url).get_backend_name() == "sqlite":
        return SqliteExecutor(url)
    return ThreadedExecutor(url)
