"""Initial schema: repositories, blobs, manifests, tags and upload sessions.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Name = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")
DigestText = sa.String(200)


def _repository_column() -> sa.Column[int]:
    return sa.Column(
        "repository_id",
        sa.Integer,
        sa.ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    )


def upgrade() -> None:
    op.create_table(
        "repositories",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", Name, nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "blobs",
        sa.Column("digest", DigestText, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "repository_blobs",
        _repository_column(),
        sa.Column(
            "digest", DigestText, sa.ForeignKey("blobs.digest"), primary_key=True
        ),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "manifests",
        _repository_column(),
        sa.Column("digest", DigestText, primary_key=True),
        sa.Column("media_type", sa.String(255), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("artifact_type", sa.String(255)),
        sa.Column("subject", DigestText),
        sa.Column("annotations", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_manifests_subject", "manifests", ["repository_id", "subject"])
    op.create_table(
        "manifest_references",
        sa.Column("repository_id", sa.Integer, primary_key=True),
        sa.Column("manifest_digest", DigestText, primary_key=True),
        sa.Column("target_digest", DigestText, primary_key=True),
        sa.Column("is_manifest", sa.Boolean, nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id", "manifest_digest"],
            ["manifests.repository_id", "manifests.digest"],
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_manifest_references_target",
        "manifest_references",
        ["repository_id", "target_digest"],
    )
    op.create_table(
        "tags",
        _repository_column(),
        sa.Column("name", Name, primary_key=True),
        sa.Column("manifest_digest", DigestText, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id", "manifest_digest"],
            ["manifests.repository_id", "manifests.digest"],
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_tags_manifest", "tags", ["repository_id", "manifest_digest"])
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "repository_id",
            sa.Integer,
            sa.ForeignKey("repositories.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "uploads",
        "tags",
        "manifest_references",
        "manifests",
        "repository_blobs",
        "blobs",
        "repositories",
    ):
        op.drop_table(table)
