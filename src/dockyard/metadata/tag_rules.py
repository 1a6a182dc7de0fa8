"""Immutable tags: rules per namespace, and the check that pushes and deletes run.

A tag matching a rule can be created, and pushed again with the same manifest,
but never moved to another manifest or deleted (nor can the manifest it names be
deleted by digest). The checks run inside the push's or delete's own transaction.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from dockyard.metadata.accounts import NotFound
from dockyard.metadata.tables import immutable_tag_rules, namespaces
from dockyard.oci import errcodes
from dockyard.oci.errcodes import RegistryError


class RuleNotFound(NotFound):
    """No such rule (or no such namespace)."""


@dataclass(frozen=True, slots=True)
class TagRule:
    namespace: str
    tag_pattern: str
    repository_pattern: str

    def covers(self, repository: str, tag: str) -> bool:
        inner = repository.partition("/")[2]
        return fnmatch.fnmatchcase(tag, self.tag_pattern) and fnmatch.fnmatchcase(
            inner, self.repository_pattern
        )

    def describe(self) -> str:
        return f"{self.namespace}/{self.repository_pattern}:{self.tag_pattern}"


def _namespace_id(conn: sa.Connection, name: str) -> int:
    found = conn.execute(
        sa.select(namespaces.c.id).where(namespaces.c.name == name)
    ).scalar()
    if found is None:
        raise RuleNotFound(f"namespace {name!r}")
    return int(found)


def add_rule(
    conn: sa.Connection, namespace: str, tag_pattern: str, repository_pattern: str = "*"
) -> None:
    """Add a rule; adding one that exists changes nothing."""
    if TagRule(namespace, tag_pattern, repository_pattern) in list_rules(
        conn, namespace
    ):
        return
    conn.execute(
        sa.insert(immutable_tag_rules).values(
            namespace_id=_namespace_id(conn, namespace),
            tag_pattern=tag_pattern,
            repository_pattern=repository_pattern,
            created_at=time.time(),
        )
    )


def remove_rule(
    conn: sa.Connection, namespace: str, tag_pattern: str, repository_pattern: str = "*"
) -> None:
    result = conn.execute(
        sa.delete(immutable_tag_rules).where(
            immutable_tag_rules.c.namespace_id == _namespace_id(conn, namespace),
            immutable_tag_rules.c.tag_pattern == tag_pattern,
            immutable_tag_rules.c.repository_pattern == repository_pattern,
        )
    )
    if not result.rowcount:
        raise RuleNotFound(f"rule {tag_pattern!r} in {namespace!r}")


def list_rules(conn: sa.Connection, namespace: str) -> list[TagRule]:
    rows = conn.execute(
        sa.select(
            immutable_tag_rules.c.tag_pattern, immutable_tag_rules.c.repository_pattern
        )
        .select_from(immutable_tag_rules.join(namespaces))
        .where(namespaces.c.name == namespace)
        .order_by(immutable_tag_rules.c.tag_pattern)
    )
    return [TagRule(namespace, row[0], row[1]) for row in rows]


def check_mutable(
    conn: sa.Connection,
    repository: str,
    tags: Iterable[str],
    *,
    action: str,
) -> None:
    """Raise DENIED when one of `tags` is protected by an immutable-tag rule."""
    wanted = list(tags)
    if not wanted:
        return
    rules = list_rules(conn, repository.partition("/")[0])
    for tag in wanted:
        for rule in rules:
            if rule.covers(repository, tag):
                raise RegistryError(
                    errcodes.DENIED,
                    f"tag {tag!r} is immutable (rule {rule.describe()}); "
                    f"it cannot be {action}",
                    detail={"tag": tag, "rule": rule.describe()},
                )
