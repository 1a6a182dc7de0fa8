"""Access control: users, namespaces, role bindings, robot accounts, audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Name = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", Name, nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255)),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "namespaces",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", Name, nullable=False, unique=True),
        sa.Column("public", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "role_bindings",
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
    op.create_table(
        "robots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", Name, nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(255), nullable=False),
        sa.Column("grants", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Float),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_used_at", sa.Float),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(512)),
        sa.Column("namespace", sa.String(255)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("remote", sa.String(64)),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_audit_events_time", "audit_events", ["time"])
    op.create_index("ix_audit_events_namespace", "audit_events", ["namespace", "time"])
    op.create_index("ix_audit_events_actor", "audit_events", ["actor", "time"])


def downgrade() -> None:
    for table in ("audit_events", "robots", "role_bindings", "namespaces", "users"):
        op.drop_table(table)
