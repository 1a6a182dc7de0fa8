"""Queries for background jobs: leases between replicas, and stale uploads."""

from __future__ import annotations

import time

import sqlalchemy as sa

from dockyard.metadata.tables import dialect_insert, job_leases, uploads


def acquire_lease(conn: sa.Connection, name: str, holder: str, seconds: float) -> bool:
    """Take (or renew) the lease on a job; False while another holder has it."""
    now = time.time()
    conn.execute(
        dialect_insert(conn.dialect.name, job_leases)
        .values(name=name, holder=holder, expires_at=0.0)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    result = conn.execute(
        sa.update(job_leases)
        .where(
            job_leases.c.name == name,
            sa.or_(job_leases.c.expires_at < now, job_leases.c.holder == holder),
        )
        .values(holder=holder, expires_at=now + seconds)
    )
    return bool(result.rowcount)


def release_lease(conn: sa.Connection, name: str, holder: str) -> None:
    conn.execute(
        sa.update(job_leases)
        .where(job_leases.c.name == name, job_leases.c.holder == holder)
        .values(expires_at=0.0)
    )


def stale_uploads(conn: sa.Connection, older_than: float, limit: int) -> list[str]:
    """Upload sessions nobody has written to since `older_than`."""
    query = (
        sa.select(uploads.c.id)
        .where(uploads.c.updated_at < older_than)
        .order_by(uploads.c.updated_at)
        .limit(limit)
    )
    return list(conn.execute(query).scalars())


def known_uploads(conn: sa.Connection, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    found = conn.execute(sa.select(uploads.c.id).where(uploads.c.id.in_(ids)))
    return set(found.scalars())


def drop_stale_upload(conn: sa.Connection, upload_id: str, older_than: float) -> bool:
    """Forget a session if it is still stale (a client may have just resumed it)."""
    result = conn.execute(
        sa.delete(uploads).where(
            uploads.c.id == upload_id, uploads.c.updated_at < older_than
        )
    )
    return bool(result.rowcount)
