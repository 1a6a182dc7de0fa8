"""Blob links found by digest alone.

Deleting a blob row makes the database check that no link still refers to it
(the foreign key), and the collector asks which repositories link a digest.
Both read `repository_blobs` by `digest`, which its primary key (repository
first) cannot serve: without this index each check scanned every link, and
collecting 25,000 blobs from a registry of 50,000 took about 19 minutes
instead of about one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_repository_blobs_digest", "repository_blobs", ["digest"])


def downgrade() -> None:
    op.drop_index("ix_repository_blobs_digest", table_name="repository_blobs")
