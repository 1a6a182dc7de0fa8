"""Queries for users, namespaces, role bindings, robot accounts and the audit log.

Plain functions of a SQLAlchemy connection, like `queries`; the API reaches them
through `AccountStore`, the CLI with a connection of its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from dockyard.metadata.tables import (
    audit_events,
    namespaces,
    robots,
    role_bindings,
    users,
)


class AlreadyExists(Exception):
    """The name is taken."""


class NotFound(Exception):
    """No such user, namespace, binding or robot."""


@dataclass(frozen=True, slots=True)
class UserRecord:
    username: str
    password_hash: str | None
    is_admin: bool
    source: str
    created_at: float


@dataclass(frozen=True, slots=True)
class NamespaceRecord:
    name: str
    public: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class BindingRecord:
    namespace: str
    subject_kind: str  # "user" or "group"
    subject: str
    role: str
    pattern: str


@dataclass(frozen=True, slots=True)
class RobotRecord:
    name: str
    secret_hash: str
    grants: list[dict[str, Any]]
    expires_at: float | None
    revoked: bool
    created_by: str
    created_at: float
    last_used_at: float | None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    time: float
    actor: str
    action: str
    target: str | None
    namespace: str | None
    outcome: str
    remote: str | None
    detail: dict[str, Any] | None


def _one(result: sa.CursorResult[Any], what: str) -> None:
    if not result.rowcount:
        raise NotFound(what)


# -- users -------------------------------------------------------------------


def _user(row: Any) -> UserRecord:
    return UserRecord(
        row.username, row.password_hash, row.is_admin, row.source, row.created_at
    )


def get_user(conn: sa.Connection, username: str) -> UserRecord | None:
    row = conn.execute(sa.select(users).where(users.c.username == username)).first()
    return None if row is None else _user(row)


def list_users(conn: sa.Connection) -> list[UserRecord]:
    return [_user(r) for r in conn.execute(sa.select(users).order_by(users.c.username))]


def create_user(
    conn: sa.Connection,
    username: str,
    password_hash: str | None,
    *,
    is_admin: bool = False,
    source: str = "local",
) -> None:
    if get_user(conn, username) is not None:
        raise AlreadyExists(f"user {username!r} already exists")
    conn.execute(
        sa.insert(users).values(
            username=username,
            password_hash=password_hash,
            is_admin=is_admin,
            source=source,
            created_at=time.time(),
        )
    )


def update_user(
    conn: sa.Connection,
    username: str,
    *,
    password_hash: str | None = None,
    is_admin: bool | None = None,
) -> None:
    values: dict[str, Any] = {}
    if password_hash is not None:
        values["password_hash"] = password_hash
    if is_admin is not None:
        values["is_admin"] = is_admin
    if values:
        result = conn.execute(
            sa.update(users).where(users.c.username == username).values(**values)
        )
        _one(result, f"user {username!r}")


def delete_user(conn: sa.Connection, username: str) -> None:
    _one(
        conn.execute(sa.delete(users).where(users.c.username == username)),
        f"user {username!r}",
    )
    conn.execute(
        sa.delete(role_bindings).where(
            role_bindings.c.subject_kind == "user", role_bindings.c.subject == username
        )
    )


# -- namespaces and role bindings ---------------------------------------------


def get_namespace(conn: sa.Connection, name: str) -> NamespaceRecord | None:
    row = conn.execute(sa.select(namespaces).where(namespaces.c.name == name)).first()
    return (
        None if row is None else NamespaceRecord(row.name, row.public, row.created_at)
    )


def list_namespaces(conn: sa.Connection) -> list[NamespaceRecord]:
    rows = conn.execute(sa.select(namespaces).order_by(namespaces.c.name))
    return [NamespaceRecord(r.name, r.public, r.created_at) for r in rows]


def create_namespace(conn: sa.Connection, name: str, *, public: bool = False) -> None:
    if get_namespace(conn, name) is not None:
        raise AlreadyExists(f"namespace {name!r} already exists")
    conn.execute(
        sa.insert(namespaces).values(name=name, public=public, created_at=time.time())
    )


def set_namespace_public(conn: sa.Connection, name: str, public: bool) -> None:
    result = conn.execute(
        sa.update(namespaces).where(namespaces.c.name == name).values(public=public)
    )
    _one(result, f"namespace {name!r}")


def delete_namespace(conn: sa.Connection, name: str) -> None:
    found = _namespace_id(conn, name)
    conn.execute(sa.delete(role_bindings).where(role_bindings.c.namespace_id == found))
    conn.execute(sa.delete(namespaces).where(namespaces.c.id == found))


def _namespace_id(conn: sa.Connection, name: str) -> int:
    found = conn.execute(
        sa.select(namespaces.c.id).where(namespaces.c.name == name)
    ).scalar()
    if found is None:
        raise NotFound(f"namespace {name!r}")
    return int(found)


def bind_role(
    conn: sa.Connection,
    namespace: str,
    subject_kind: str,
    subject: str,
    role: str,
    pattern: str = "*",
) -> None:
    """Give a user or group a role in a namespace (replacing an earlier one)."""
    found = _namespace_id(conn, namespace)
    match = sa.and_(
        role_bindings.c.namespace_id == found,
        role_bindings.c.subject_kind == subject_kind,
        role_bindings.c.subject == subject,
        role_bindings.c.pattern == pattern,
    )
    conn.execute(sa.delete(role_bindings).where(match))
    conn.execute(
        sa.insert(role_bindings).values(
            namespace_id=found,
            subject_kind=subject_kind,
            subject=subject,
            role=role,
            pattern=pattern,
            created_at=time.time(),
        )
    )


def unbind_role(
    conn: sa.Connection, namespace: str, subject_kind: str, subject: str, pattern: str
) -> None:
    found = _namespace_id(conn, namespace)
    result = conn.execute(
        sa.delete(role_bindings).where(
            role_bindings.c.namespace_id == found,
            role_bindings.c.subject_kind == subject_kind,
            role_bindings.c.subject == subject,
            role_bindings.c.pattern == pattern,
        )
    )
    _one(result, f"{subject_kind} {subject!r} in {namespace!r}")


_BINDINGS = sa.select(
    namespaces.c.name.label("namespace"),
    role_bindings.c.subject_kind,
    role_bindings.c.subject,
    role_bindings.c.role,
    role_bindings.c.pattern,
).select_from(role_bindings.join(namespaces))


def list_bindings(conn: sa.Connection, namespace: str) -> list[BindingRecord]:
    rows = conn.execute(
        _BINDINGS.where(namespaces.c.name == namespace).order_by(
            role_bindings.c.subject_kind, role_bindings.c.subject
        )
    )
    return [BindingRecord(**row._mapping) for row in rows]


def _subject_matches(username: str, groups: Iterable[str]) -> sa.ColumnElement[bool]:
    return sa.or_(
        sa.and_(
            role_bindings.c.subject_kind == "user", role_bindings.c.subject == username
        ),
        sa.and_(
            role_bindings.c.subject_kind == "group",
            role_bindings.c.subject.in_(list(groups)),
        ),
    )


def namespaces_visible_to(
    conn: sa.Connection, username: str, groups: Iterable[str]
) -> list[NamespaceRecord]:
    """Public namespaces, the user's own, and those with a binding for them."""
    bound = sa.exists().where(
        role_bindings.c.namespace_id == namespaces.c.id,
        _subject_matches(username, groups),
    )
    query = (
        sa.select(namespaces)
        .where(sa.or_(namespaces.c.public, namespaces.c.name == username, bound))
        .order_by(namespaces.c.name)
    )
    return [
        NamespaceRecord(r.name, r.public, r.created_at) for r in conn.execute(query)
    ]


def bindings_for(
    conn: sa.Connection, namespace: str, username: str, groups: Iterable[str]
) -> tuple[NamespaceRecord | None, list[BindingRecord]]:
    """The namespace and every binding that applies to this user or their groups."""
    record = get_namespace(conn, namespace)
    if record is None:
        return None, []
    subjects = _subject_matches(username, groups)
    rows = conn.execute(_BINDINGS.where(namespaces.c.name == namespace, subjects))
    return record, [BindingRecord(**row._mapping) for row in rows]


# -- robot accounts ------------------------------------------------------------


def _robot(row: Any) -> RobotRecord:
    return RobotRecord(
        row.name,
        row.secret_hash,
        json.loads(row.grants),
        row.expires_at,
        row.revoked,
        row.created_by,
        row.created_at,
        row.last_used_at,
    )


def create_robot(
    conn: sa.Connection,
    name: str,
    secret_hash: str,
    grants: list[dict[str, Any]],
    expires_at: float | None,
    created_by: str,
) -> None:
    if get_robot(conn, name) is not None:
        raise AlreadyExists(f"robot {name!r} already exists")
    conn.execute(
        sa.insert(robots).values(
            name=name,
            secret_hash=secret_hash,
            grants=json.dumps(grants),
            expires_at=expires_at,
            revoked=False,
            created_by=created_by,
            created_at=time.time(),
        )
    )


def get_robot(conn: sa.Connection, name: str) -> RobotRecord | None:
    row = conn.execute(sa.select(robots).where(robots.c.name == name)).first()
    return None if row is None else _robot(row)


def list_robots(conn: sa.Connection) -> list[RobotRecord]:
    return [_robot(r) for r in conn.execute(sa.select(robots).order_by(robots.c.name))]


def revoke_robot(conn: sa.Connection, name: str) -> None:
    result = conn.execute(
        sa.update(robots).where(robots.c.name == name).values(revoked=True)
    )
    _one(result, f"robot {name!r}")


def touch_robot(conn: sa.Connection, name: str, when: float) -> None:
    conn.execute(
        sa.update(robots).where(robots.c.name == name).values(last_used_at=when)
    )


# -- audit log -----------------------------------------------------------------


def record_event(
    conn: sa.Connection,
    *,
    actor: str,
    action: str,
    outcome: str,
    target: str | None = None,
    namespace: str | None = None,
    remote: str | None = None,
    detail: dict[str, Any] | None = None,
    when: float | None = None,
) -> None:
    conn.execute(
        sa.insert(audit_events).values(
            time=when or time.time(),
            actor=actor,
            action=action,
            outcome=outcome,
            target=target,
            namespace=namespace,
            remote=remote,
            detail=json.dumps(detail) if detail else None,
        )
    )


def list_events(
    conn: sa.Connection,
    *,
    namespace: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 100,
) -> list[AuditRecord]:
    query = sa.select(audit_events)
    for column, value in (
        (audit_events.c.namespace, namespace),
        (audit_events.c.actor, actor),
        (audit_events.c.action, action),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(audit_events.c.time >= since)
    if until is not None:
        query = query.where(audit_events.c.time < until)
    query = query.order_by(audit_events.c.time.desc(), audit_events.c.id.desc())
    return [
        AuditRecord(
            r.id,
            r.time,
            r.actor,
            r.action,
            r.target,
            r.namespace,
            r.outcome,
            r.remote,
            json.loads(r.detail) if r.detail else None,
        )
        for r in conn.execute(query.limit(limit))
    ]
