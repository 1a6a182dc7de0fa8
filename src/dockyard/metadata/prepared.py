"""Hot read queries, compiled once and run straight on the database driver.

SQLAlchemy Core spends about 80 microseconds per execution on cache-key
building, parameter processing and result wrapping; sqlite3 itself answers a
manifest lookup in about 10. For the few reads on every pull (manifest by tag
or digest, blob visibility, tag pages) that overhead was most of the request,
so they are written as ordinary Core statements, compiled once per dialect
into the driver's SQL text, and executed with the driver's own cursor. Their
results are plain tuples.

Only single statements belong here: they run in whatever transaction the
connection has (none for SQLite's inline reader, autocommit for PostgreSQL's,
the writer's own for the inserts and updates of a push), and bypass
SQLAlchemy's event hooks. A statement whose form differs by dialect (an
insert with ON CONFLICT) is given as a function of the dialect's name.
psycopg prepares a statement on the server once it has run a few times, so
PostgreSQL skips re-planning as well.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa

T = TypeVar("T")


Statement = sa.Select[Any] | sa.CompoundSelect[Any] | sa.Insert | sa.Update | sa.Delete


class _Compiled(NamedTuple):
    sql: str
    # Parameter names in positional order, for drivers that bind by position.
    order: tuple[str, ...] | None
    fixed: dict[str, Any]


class Prepared:
    """One statement, its compiled text per dialect, and how to bind it."""

    def __init__(self, statement: Statement | Callable[[str], Statement]) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: sa.Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            statement = self.statement
            if callable(statement):
                statement = statement(dialect.name)
            compiled = statement.compile(dialect=dialect)
            order = compiled.positiontup
            found = _Compiled(
                str(compiled),
                tuple(order) if order is not None else None,
                # Values the statement carries itself (SQLite's `OFFSET 0`).
                {
                    key: value
                    for key, value in compiled.params.items()
                    if not compiled.binds[key].required
                },
            )
            self._compiled[dialect.name] = found
        return found

    def _run(
        self,
        conn: sa.Connection,
        params: Mapping[str, Any],
        fetch: Callable[[Any], T],
    ) -> T:
        sql, order, fixed = self._for(conn.dialect)
        merged = {**fixed, **params} if fixed else params
        bound: Any = merged if order is None else tuple(merged[k] for k in order)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, bound)
            return fetch(cursor)
        except conn.dialect.loaded_dbapi.Error as error:
            raise _translated(conn, error, sql, bound, cursor) from error
        finally:
            cursor.close()

    def first(self, conn: sa.Connection, **params: Any) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._run(
            conn, params, lambda cursor: cursor.fetchone()
        )
        return row

    def execute(self, conn: sa.Connection, **params: Any) -> int:
        """Run an insert, update or delete; the number of rows it touched."""
        count: int = self._run(conn, params, lambda cursor: cursor.rowcount)
        return count

    def column(self, conn: sa.Connection, **params: Any) -> list[Any]:
        """The first column of every row."""
        return self._run(
            conn, params, lambda cursor: [row[0] for row in cursor.fetchall()]
        )


def _translated(
    conn: sa.Connection, error: Any, sql: str, bound: Any, cursor: Any
) -> sa.exc.StatementError:
    """The driver's error as SQLAlchemy would have raised it.

    A lost connection means the database went away (a restart, a failover),
    so, as SQLAlchemy does for the statements it runs itself, this connection
    is invalidated and the pool's others are replaced rather than handed out.
    """
    dbapi_connection = conn.connection.dbapi_connection
    lost = conn.dialect.is_disconnect(error, dbapi_connection, cursor)
    if lost:
        conn.invalidate(error)
        conn.engine.dispose()
    translated: sa.exc.StatementError = sa.exc.DBAPIError.instance(
        sql,
        bound,
        error,
        conn.dialect.loaded_dbapi.Error,
        connection_invalidated=lost,
        dialect=conn.dialect,
    )
    return translated
