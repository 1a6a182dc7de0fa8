"""How queries reach the database without stalling the event loop more than needed.

Queries are plain functions of a SQLAlchemy `Connection`; an executor decides
where each one runs.

- SQLite: reads run inline on the event loop. In WAL mode a read never waits for
  a writer and takes microseconds, so a thread hop would cost more than the
  query. Writes may wait for another process's write lock, so they run in a
  worker thread and begin with `BEGIN IMMEDIATE`, which takes that lock up front.
  Writers take turns before that (`WriterTurns`): left to SQLite, a writer that
  finds the database locked sleeps and retries with growing pauses (up to
  100 ms each), and under many concurrent pushes those pauses, not the disk,
  set the pace.
- PostgreSQL: every query goes over the network, so reads and writes both run in
  worker threads, on a connection pool shared by the process.

A write may be marked not `durable`: one that a power loss may roll back
without harm. Such commits skip the flush to disk (SQLite `synchronous=NORMAL`,
PostgreSQL `synchronous_commit=off`); the database stays consistent either
way, and commits reach the disk in order, so the next durable commit carries
every earlier one with it. Upload sessions' bookkeeping is not durable (after
a power loss the client resumes from what the registry then reports), nor is
a finished blob's row (its file is fsynced first; the manifest push that
refers to it is durable and so makes the row durable too; a blob lost before
any manifest used it is simply pushed again). Manifests, tags, accounts and
rules are written durably.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


class WriterTurns:
    """One SQLite writer at a time, woken as soon as the previous one is done.

    A lock within the process queues its threads; an flock on a file beside the
    database queues the processes (server workers, replicas on one host, the
    command line), and the kernel wakes the next one the moment it is released.
    """

    def __init__(self, database: str | None) -> None:
        self._threads = threading.Lock()
        self._fd: int | None = None
        if database and database != ":memory:":
            self._fd = os.open(f"{database}-writer", os.O_RDWR | os.O_CREAT, 0o600)

    @contextmanager
    def turn(self) -> Iterator[None]:
        with self._threads:
            if self._fd is None:
                yield
                return
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class SqliteExecutor:
    def __init__(self, url: str) -> None:
        self.engine = create_sync_engine(url)
        self.dialect = self.engine.dialect.name
        self._turns = WriterTurns(self.engine.url.database)
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
        with self._turns.turn(), self.engine.connect() as conn:
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
        self._turns.close()


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
