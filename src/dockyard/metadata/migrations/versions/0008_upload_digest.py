"""The digest of an upload's bytes so far, kept with its size.

A client that sends every byte in PATCH requests and then an empty PUT (docker,
skopeo, containerd) often sends the PUT on another connection, which may reach
another server process than the one holding the running hash. With the digest
recorded at the last PATCH, that process can finish the upload without reading
the whole blob back to hash it again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("digest_so_far", sa.String(200)))


def downgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("digest_so_far")
