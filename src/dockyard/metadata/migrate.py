"""Apply the Alembic migrations that ship inside the package."""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from dockyard.metadata.engine import create_sync_engine, sync_url

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# PostgreSQL advisory lock key held while migrating ("dockyard" in ASCII).
MIGRATION_LOCK = 0x646F636B79617264


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option(
        "sqlalchemy.url", sync_url(url).render_as_string(hide_password=False)
    )
    return config


def upgrade(url: str) -> None:
    """Bring the database at `url` to the newest schema."""
    config = _config(url)
    engine = create_sync_engine(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Replicas starting together migrate one after the other; the
                # lock ends with the transaction.
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"),
                    {"key": MIGRATION_LOCK},
                )
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    finally:
        engine.dispose()
    logger.info("database schema is current", extra={"revision": head_revision()})


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config("sqlite://")).get_current_head()


def current_revision(url: str) -> str | None:
    engine = create_sync_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
