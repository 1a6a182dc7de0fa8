"""Retention: the rules per namespace, pull times, and the deletions a run makes.

Rules say which tags of a namespace's repositories to keep and when untagged
manifests may go; `services.retention` plans from what these queries load. The
deletions re-check their condition in their own transaction, as the garbage
collector's do, so a push that races a run wins.
"""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import sqlalchemy as sa

from dockyard.metadata import gc_queries, tag_rules
from dockyard.metadata.accounts import NotFound
from dockyard.metadata.gc_queries import RepositoryGraph
from dockyard.metadata.tables import (
    dialect_insert,
    manifest_pulls,
    manifests,
    namespaces,
    repositories,
    retention_rules,
    tags,
)

DAY = 86400.0
MAX_DAYS = 36500
MAX_PATTERNS = 32
MAX_PATTERN = 255
# Repository names per lookup when pull times are written: far below SQLite's
# limit on bound parameters.
PULL_CHUNK = 500


class RetentionRuleNotFound(NotFound):
    """No such rule (or no such namespace)."""


class InvalidRule(ValueError):
    """A rule that cannot be stored; the message says which field is wrong."""


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """What to keep in the repositories of `namespace` matching the pattern.

    Tag conditions (`keep_newest`, `keep_tags`, `keep_pulled_days`) each keep
    some tags; a rule with at least one of them deletes the tags none keeps.
    `untagged_days` lets untagged manifests older than that go, and
    `keep_pinned` protects those pulled by digest (within `keep_pulled_days`
    when set, else ever).
    """

    namespace: str
    repository_pattern: str = "*"
    keep_newest: int | None = None
    keep_tags: tuple[str, ...] = ()
    keep_pulled_days: int | None = None
    untagged_days: int | None = None
    keep_pinned: bool = False

    @property
    def manages_tags(self) -> bool:
        return (
            self.keep_newest is not None
            or bool(self.keep_tags)
            or self.keep_pulled_days is not None
        )

    def covers(self, repository: str) -> bool:
        namespace, _, inner = repository.partition("/")
        return namespace == self.namespace and fnmatch.fnmatchcase(
            inner, self.repository_pattern
        )

    def keeps_pin(self, pinned_at: float, now: float) -> bool:
        """Whether a manifest last pulled by digest at `pinned_at` is protected."""
        if not self.keep_pinned:
            return False
        window = self.keep_pulled_days
        return window is None or pinned_at >= now - window * DAY

    def validate(self) -> RetentionRule:
        for name in ("keep_newest", "keep_pulled_days", "untagged_days"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= MAX_DAYS:
                raise InvalidRule(f"{name}: a whole number from 0 to {MAX_DAYS}")
        _check_pattern(self.repository_pattern, "repository_pattern")
        if len(self.keep_tags) > MAX_PATTERNS:
            raise InvalidRule(f"keep_tags: at most {MAX_PATTERNS} patterns")
        for pattern in self.keep_tags:
            _check_pattern(pattern, "keep_tags")
        if not (
            self.manages_tags or self.untagged_days is not None or self.keep_pinned
        ):
            raise InvalidRule(
                "a rule needs at least one of keep_newest, keep_tags, "
                "keep_pulled_days, untagged_days, keep_pinned"
            )
        return self

    def describe(self) -> str:
        parts = [f"{self.namespace}/{self.repository_pattern}:"]
        if self.keep_newest is not None:
            parts.append(f"keep_newest={self.keep_newest}")
        if self.keep_tags:
            parts.append(f"keep_tags={','.join(self.keep_tags)}")
        if self.keep_pulled_days is not None:
            parts.append(f"keep_pulled_days={self.keep_pulled_days}")
        if self.untagged_days is not None:
            parts.append(f"untagged_days={self.untagged_days}")
        if self.keep_pinned:
            parts.append("keep_pinned")
        return " ".join(parts)


def _check_pattern(value: str, name: str) -> None:
    if not value or len(value) > MAX_PATTERN or not value.isprintable():
        raise InvalidRule(f"{name}: 1 to {MAX_PATTERN} printable characters")


@dataclass(frozen=True, slots=True)
class TagRow:
    name: str
    digest: str
    updated_at: float


@dataclass(frozen=True, slots=True)
class PullRow:
    pulled_at: float
    # The last pull by digest, if any.
    pinned_at: float | None


@dataclass(frozen=True, slots=True)
class Pull:
    """A pull to record: the newest times one process saw for a manifest."""

    repository: str
    digest: str
    pulled_at: float
    pinned_at: float | None


@dataclass(slots=True)
class RepositoryState:
    """One repository as the retention planner sees it."""

    graph: RepositoryGraph
    tags: list[TagRow] = field(default_factory=list)
    pulls: dict[str, PullRow] = field(default_factory=dict)


# -- rules -------------------------------------------------------------------------


def _namespace_id(conn: sa.Connection, name: str) -> int:
    found = conn.execute(
        sa.select(namespaces.c.id).where(namespaces.c.name == name)
    ).scalar()
    if found is None:
        raise RetentionRuleNotFound(f"namespace {name!r}")
    return int(found)


def set_rule(conn: sa.Connection, rule: RetentionRule) -> None:
    """Create the rule for its repository pattern, or replace it."""
    namespace_id = _namespace_id(conn, rule.namespace)
    values: dict[str, Any] = {
        "keep_newest": rule.keep_newest,
        "keep_tags": json.dumps(list(rule.keep_tags)) if rule.keep_tags else None,
        "keep_pulled_days": rule.keep_pulled_days,
        "untagged_days": rule.untagged_days,
        "keep_pinned": rule.keep_pinned,
        "updated_at": time.time(),
    }
    same = sa.and_(
        retention_rules.c.namespace_id == namespace_id,
        retention_rules.c.repository_pattern == rule.repository_pattern,
    )
    if conn.execute(sa.update(retention_rules).where(same).values(values)).rowcount:
        return
    conn.execute(
        sa.insert(retention_rules).values(
            namespace_id=namespace_id,
            repository_pattern=rule.repository_pattern,
            **values,
        )
    )


def remove_rule(
    conn: sa.Connection, namespace: str, repository_pattern: str = "*"
) -> None:
    result = conn.execute(
        sa.delete(retention_rules).where(
            retention_rules.c.namespace_id == _namespace_id(conn, namespace),
            retention_rules.c.repository_pattern == repository_pattern,
        )
    )
    if not result.rowcount:
        raise RetentionRuleNotFound(
            f"retention rule {repository_pattern!r} in {namespace!r}"
        )


def list_rules(
    conn: sa.Connection, namespace: str | None = None
) -> list[RetentionRule]:
    """The rules of one namespace, or of every namespace."""
    query = (
        sa.select(namespaces.c.name, retention_rules)
        .select_from(retention_rules.join(namespaces))
        .order_by(namespaces.c.name, retention_rules.c.repository_pattern)
    )
    if namespace is not None:
        query = query.where(namespaces.c.name == namespace)
    return [
        RetentionRule(
            namespace=row.name,
            repository_pattern=row.repository_pattern,
            keep_newest=row.keep_newest,
            keep_tags=tuple(json.loads(row.keep_tags)) if row.keep_tags else (),
            keep_pulled_days=row.keep_pulled_days,
            untagged_days=row.untagged_days,
            keep_pinned=bool(row.keep_pinned),
        )
        for row in conn.execute(query)
    ]


# -- what a run reads --------------------------------------------------------------


def namespace_repositories(
    conn: sa.Connection, namespace: str
) -> list[tuple[int, str]]:
    """The repositories of a namespace: `<namespace>` itself and `<namespace>/...`."""
    name = repositories.c.name
    query = (
        sa.select(repositories.c.id, name)
        .where(
            sa.or_(name == namespace, name.startswith(f"{namespace}/", autoescape=True))
        )
        .order_by(name)
    )
    return [(row.id, row.name) for row in conn.execute(query)]


def load_state(conn: sa.Connection, repository_id: int, name: str) -> RepositoryState:
    """Manifests and references (as the collector loads them), tags, pull times."""
    state = RepositoryState(gc_queries.load_repository(conn, repository_id, name))
    tag_rows = sa.select(tags.c.name, tags.c.manifest_digest, tags.c.updated_at).where(
        tags.c.repository_id == repository_id
    )
    state.tags = [
        TagRow(row.name, row.manifest_digest, row.updated_at)
        for row in conn.execute(tag_rows)
    ]
    pull_rows = sa.select(
        manifest_pulls.c.digest, manifest_pulls.c.pulled_at, manifest_pulls.c.pinned_at
    ).where(manifest_pulls.c.repository_id == repository_id)
    state.pulls = {
        row.digest: PullRow(row.pulled_at, row.pinned_at)
        for row in conn.execute(pull_rows)
    }
    return state


def collector_exempt(
    conn: sa.Connection,
    graph: RepositoryGraph,
    rules: Sequence[RetentionRule],
    now: float,
) -> set[str]:
    """Untagged manifests the garbage collector must leave to retention.

    Where a rule sets `untagged_days`, that rule, not the collector's
    `keep_untagged`, decides when untagged manifests go: all are exempt (the
    retention run deletes them when due, and the collector then frees their
    blobs). Otherwise `keep_pinned` rules exempt what they protect.
    """
    covering = [rule for rule in rules if rule.covers(graph.name)]
    if any(rule.untagged_days is not None for rule in covering):
        return set(graph.manifests)
    if not any(rule.keep_pinned for rule in covering):
        return set()
    pinned = sa.select(manifest_pulls.c.digest, manifest_pulls.c.pinned_at).where(
        manifest_pulls.c.repository_id == graph.repository_id,
        manifest_pulls.c.pinned_at.is_not(None),
    )
    return {
        row.digest
        for row in conn.execute(pinned)
        if any(rule.keeps_pin(row.pinned_at, now) for rule in covering)
    }


# -- pull times --------------------------------------------------------------------


def record_pulls(conn: sa.Connection, pulls: Sequence[Pull]) -> int:
    """Write a batch of pull times, keeping the newest of stored and given."""
    names = sorted({pull.repository for pull in pulls})
    ids: dict[str, int] = {}
    for start in range(0, len(names), PULL_CHUNK):
        chunk = names[start : start + PULL_CHUNK]
        query = sa.select(repositories.c.id, repositories.c.name).where(
            repositories.c.name.in_(chunk)
        )
        ids.update((row.name, row.id) for row in conn.execute(query))

    rows = [
        {
            "repository_id": ids[pull.repository],
            "digest": pull.digest,
            "pulled_at": pull.pulled_at,
            "pinned_at": pull.pinned_at,
        }
        for pull in pulls
        if pull.repository in ids
    ]
    if rows:
        # One statement run for many rows (executemany): compiled once, cheap.
        conn.execute(_upsert_pulls(conn.dialect.name), rows)
    return len(rows)


@cache
def _upsert_pulls(dialect: str) -> Any:
    insert = dialect_insert(dialect, manifest_pulls)
    stored, given = manifest_pulls.c, insert.excluded
    return insert.on_conflict_do_update(
        index_elements=["repository_id", "digest"],
        set_={
            "pulled_at": sa.case(
                (given.pulled_at > stored.pulled_at, given.pulled_at),
                else_=stored.pulled_at,
            ),
            "pinned_at": sa.case(
                (stored.pinned_at.is_(None), given.pinned_at),
                (given.pinned_at > stored.pinned_at, given.pinned_at),
                else_=stored.pinned_at,
            ),
        },
    )


def prune_pulls(conn: sa.Connection) -> int:
    """Forget the pull times of manifests that are gone."""
    result = conn.execute(
        sa.delete(manifest_pulls).where(
            ~sa.exists().where(
                manifests.c.repository_id == manifest_pulls.c.repository_id,
                manifests.c.digest == manifest_pulls.c.digest,
            )
        )
    )
    return int(result.rowcount or 0)


# -- deletions, each re-checking its condition ---------------------------------


def delete_tags(
    conn: sa.Connection, repository_id: int, repository: str, planned: Sequence[TagRow]
) -> list[str]:
    """Delete tags that still name what the plan saw and are not immutable.

    A tag pushed again since the plan (another manifest, or the same one at a
    later time) stays, and so does one an immutable-tag rule added meanwhile
    now protects.
    """
    immutable = tag_rules.list_rules(conn, repository.partition("/")[0])
    deleted = []
    for tag in planned:
        if any(rule.covers(repository, tag.name) for rule in immutable):
            continue
        result = conn.execute(
            sa.delete(tags).where(
                tags.c.repository_id == repository_id,
                tags.c.name == tag.name,
                tags.c.manifest_digest == tag.digest,
                tags.c.updated_at == tag.updated_at,
            )
        )
        if result.rowcount:
            deleted.append(tag.name)
    return deleted


def delete_manifests(
    conn: sa.Connection, repository_id: int, planned: Sequence[str], cutoff: float
) -> list[str]:
    """Delete those untagged manifests that nothing reaches any more.

    The collector's own deletion runs the checks: no tag names the manifest, no
    remaining manifest lists it as a child, its subject is gone, and it was
    pushed before `cutoff`. Manifests a push holds right now are left alone.
    """
    return gc_queries.delete_unreachable_manifests(conn, repository_id, planned, cutoff)
