"""Queries for upload locks: leases in `job_leases` named `upload:<id>`.

Taking and renewing one is `jobs.acquire_lease`, with a token unique to each
acquisition as the holder. Releasing one deletes its row: unlike a job's, an
upload's lease is not taken again once the session is finished.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from dockyard.metadata.tables import job_leases

PREFIX = "upload:"
# A lease that ran out this long ago belonged to a holder that crashed, on a
# session nobody resumed: nothing will release it, so a later release does.
FORGOTTEN_AFTER = 3600.0


def lease_name(upload_id: str) -> str:
    return PREFIX + upload_id


def release_upload_lease(conn: sa.Connection, name: str, holder: str) -> None:
    conn.execute(
        sa.delete(job_leases).where(
            job_leases.c.name == name, job_leases.c.holder == holder
        )
    )
    conn.execute(
        sa.delete(job_leases).where(
            job_leases.c.name.startswith(PREFIX, autoescape=True),
            job_leases.c.expires_at < time.time() - FORGOTTEN_AFTER,
        )
    )
