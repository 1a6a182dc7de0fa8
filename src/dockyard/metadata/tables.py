"""Table definitions, shared by the store and the Alembic migrations."""

from __future__ import annotations

import importlib
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

# Names compare byte-wise everywhere so that tag lists and the catalog come out in
# the lexical order the spec asks for: SQLite's default collation already does
# that, PostgreSQL needs the "C" collation.
Name = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")
DigestText = sa.String(200)

repositories = sa.Table(
    "repositories",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", Name, nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("digest", DigestText, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

repository_blobs = sa.Table(
    "repository_blobs",
    metadata,
    sa.Column(
        "repository_id",
        sa.Integer,
        sa.ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("digest", DigestText, sa.ForeignKey("blobs.digest"), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    # Blob deletions check the foreign key, and the collector looks up links,
    # by digest alone.
    sa.Index("ix_repository_blobs_digest", "digest"),
)

manifests = sa.Table(
    "manifests",
    metadata,
    sa.Column(
        "repository_id",
        sa.Integer,
        sa.ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("digest", DigestText, primary_key=True),
    sa.Column("media_type", sa.String(255), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("artifact_type", sa.String(255)),
    sa.Column("subject", DigestText),
    sa.Column("annotations", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_manifests_subject", "repository_id", "subject"),
)

# What each manifest references: blobs (config, layers) and child manifests.
manifest_references = sa.Table(
    "manifest_references",
    metadata,
    sa.Column("repository_id", sa.Integer, primary_key=True),
    sa.Column("manifest_digest", DigestText, primary_key=True),
    sa.Column("target_digest", DigestText, primary_key=True),
    sa.Column("is_manifest", sa.Boolean, nullable=False),
    sa.ForeignKeyConstraint(
        ["repository_id", "manifest_digest"],
        ["manifests.repository_id", "manifests.digest"],
        ondelete="CASCADE",
    ),
    sa.Index("ix_manifest_references_target", "repository_id", "target_digest"),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column(
        "repository_id",
        sa.Integer,
        sa.ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("name", Name, primary_key=True),
    sa.Column("manifest_digest", DigestText, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.ForeignKeyConstraint(
        ["repository_id", "manifest_digest"],
        ["manifests.repository_id", "manifests.digest"],
        ondelete="CASCADE",
    ),
    sa.Index("ix_tags_manifest", "repository_id", "manifest_digest"),
)

uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "repository_id",
        sa.Integer,
        sa.ForeignKey("repositories.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("algorithm", sa.String(16), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    # "algorithm:hex" of the first `size` bytes, when the writer hashed them all.
    sa.Column("digest_so_far", sa.String(200)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# -- access control ------------------------------------------------------------

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", Name, nullable=False, unique=True),
    # NULL for users who authenticate elsewhere (LDAP).
    sa.Column("password_hash", sa.String(255)),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

namespaces = sa.Table(
    "namespaces",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", Name, nullable=False, unique=True),
    sa.Column("public", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
    # Most bytes of distinct blobs the namespace may hold (NULL: no limit).
    sa.Column("quota_bytes", sa.BigInteger),
)

# A role held in a namespace by a user or a directory group, on every repository
# of the namespace or only on those matching `pattern`.
role_bindings = sa.Table(
    "role_bindings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "namespace_id",
        sa.Integer,
        sa.ForeignKey("namespaces.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("subject_kind", sa.String(16), nullable=False),
    sa.Column("subject", Name, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("pattern", sa.String(255), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("namespace_id", "subject_kind", "subject", "pattern"),
)

robots = sa.Table(
    "robots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", Name, nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(255), nullable=False),
    sa.Column("grants", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Float),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", sa.Float, nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(512)),
    sa.Column("namespace", sa.String(255)),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("remote", sa.String(64)),
    sa.Column("detail", sa.Text),
    sa.Index("ix_audit_events_time", "time"),
    sa.Index("ix_audit_events_namespace", "namespace", "time"),
    sa.Index("ix_audit_events_actor", "actor", "time"),
)

# Tags that may not be moved or deleted once pushed: a glob over the tag name,
# limited to the repositories of the namespace matching `repository_pattern`.
immutable_tag_rules = sa.Table(
    "immutable_tag_rules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "namespace_id",
        sa.Integer,
        sa.ForeignKey("namespaces.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("tag_pattern", sa.String(255), nullable=False),
    sa.Column("repository_pattern", sa.String(255), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("namespace_id", "tag_pattern", "repository_pattern"),
)

# Who runs a background job right now: one replica at a time holds each lease.
job_leases = sa.Table(
    "job_leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

# Retention rules: which tags and untagged manifests of the namespace's
# repositories matching `repository_pattern` to keep (docs/retention.md).
retention_rules = sa.Table(
    "retention_rules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "namespace_id",
        sa.Integer,
        sa.ForeignKey("namespaces.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("repository_pattern", sa.String(255), nullable=False),
    sa.Column("keep_newest", sa.Integer),
    # A JSON list of tag globs.
    sa.Column("keep_tags", sa.Text),
    sa.Column("keep_pulled_days", sa.Integer),
    sa.Column("untagged_days", sa.Integer),
    sa.Column("keep_pinned", sa.Boolean, nullable=False, default=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("namespace_id", "repository_pattern"),
)

# When each manifest was last pulled (a GET, not a HEAD), written in batches by
# every process; `pinned_at` is the last pull by digest. No foreign key to the
# manifest: a late batch must not fail on a manifest deleted meanwhile, so
# retention runs drop the rows of manifests that are gone.
manifest_pulls = sa.Table(
    "manifest_pulls",
    metadata,
    sa.Column(
        "repository_id",
        sa.Integer,
        sa.ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("digest", DigestText, primary_key=True),
    sa.Column("pulled_at", sa.Float, nullable=False),
    sa.Column("pinned_at", sa.Float),
)


def dialect_insert(dialect: str, table: sa.Table) -> Any:
    """An INSERT with the dialect's ON CONFLICT clauses (SQLite or PostgreSQL).

    The dialect's module is imported on first use: a SQLite registry never loads
    PostgreSQL's (about 2 MiB per process).
    """
    name = "postgresql" if dialect == "postgresql" else "sqlite"
    return importlib.import_module(f"sqlalchemy.dialects.{name}").insert(table)
