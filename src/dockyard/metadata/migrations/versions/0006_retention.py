"""Retention rules per namespace, and when each manifest was last pulled.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

DigestText = sa.String(200)


def upgrade() -> None:
    op.create_table(
        "retention_rules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "namespace_id",
            sa.Integer,
            sa.ForeignKey("namespaces.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("repository_pattern", sa.String(255), nullable=False),
        sa.Column("keep_newest", sa.Integer),
        sa.Column("keep_tags", sa.Text),
        sa.Column("keep_pulled_days", sa.Integer),
        sa.Column("untagged_days", sa.Integer),
        sa.Column("keep_pinned", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("namespace_id", "repository_pattern"),
    )
    op.create_table(
        "manifest_pulls",
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


def downgrade() -> None:
    op.drop_table("manifest_pulls")
    op.drop_table("retention_rules")
