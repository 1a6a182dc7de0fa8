"""Namespace quotas: bytes of distinct blobs, each counted once per namespace.

A blob shared by ten repositories of a namespace counts once; a blob shared by
two namespaces counts in both. The check runs inside the transaction that links
a new blob into a repository, so concurrent pushes cannot overshoot together.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from dockyard.metadata.accounts import NotFound
from dockyard.metadata.prepared import Prepared
from dockyard.metadata.tables import blobs, namespaces, repositories, repository_blobs
from dockyard.oci import errcodes
from dockyard.oci.errcodes import RegistryError


@dataclass(frozen=True, slots=True)
class Usage:
    namespace: str
    used_bytes: int
    quota_bytes: int | None


def _in_namespace(namespace: str) -> sa.ColumnElement[bool]:
    return sa.or_(
        repositories.c.name == namespace,
        repositories.c.name.startswith(namespace + "/", autoescape=True),
    )


def _distinct_blobs(namespace: str) -> sa.Subquery:
    return (
        sa.select(repository_blobs.c.digest)
        .join(repositories, repositories.c.id == repository_blobs.c.repository_id)
        .where(_in_namespace(namespace))
        .distinct()
        .subquery()
    )


def used_bytes(conn: sa.Connection, namespace: str) -> int:
    linked = _distinct_blobs(namespace)
    total = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(blobs.c.size), 0)).join(
            linked, linked.c.digest == blobs.c.digest
        )
    ).scalar()
    return int(total or 0)


_QUOTA = sa.select(namespaces.c.quota_bytes).where(
    namespaces.c.name == sa.bindparam("namespace")
)
# Read on every blob push, most often to find no quota: prepared.
_QUOTA_READ = Prepared(_QUOTA)
# PostgreSQL: pushes into one namespace check its quota one at a time.
_QUOTA_LOCKED = Prepared(_QUOTA.with_for_update())


def quota_of(conn: sa.Connection, namespace: str, *, lock: bool = False) -> int | None:
    row = (_QUOTA_LOCKED if lock else _QUOTA_READ).first(conn, namespace=namespace)
    return None if row is None or row[0] is None else int(row[0])


def usage(conn: sa.Connection, namespace: str) -> Usage:
    return Usage(namespace, used_bytes(conn, namespace), quota_of(conn, namespace))


def set_quota(conn: sa.Connection, namespace: str, quota_bytes: int | None) -> None:
    result = conn.execute(
        sa.update(namespaces)
        .where(namespaces.c.name == namespace)
        .values(quota_bytes=quota_bytes)
    )
    if not result.rowcount:
        raise NotFound(f"namespace {namespace!r}")


def check_room(conn: sa.Connection, repository: str, digest: str, size: int) -> None:
    """Raise DENIED if linking this blob would take the namespace over quota."""
    namespace = repository.partition("/")[0]
    quota = quota_of(conn, namespace, lock=True)
    if quota is None:
        return
    linked = _distinct_blobs(namespace)
    present = conn.execute(
        sa.select(linked.c.digest).where(linked.c.digest == digest)
    ).first()
    if present is not None:
        return  # already counted in this namespace
    used = used_bytes(conn, namespace)
    if used + size > quota:
        raise RegistryError(
            errcodes.DENIED,
            f"namespace {namespace!r} is over its quota: {used + size} bytes "
            f"needed, {quota} allowed",
            detail={"namespace": namespace, "used": used, "quota": quota},
        )
