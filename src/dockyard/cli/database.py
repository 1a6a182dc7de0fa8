"""A database connection for commands that change accounts directly."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from dockyard.cli.options import settings_from
from dockyard.metadata import migrate
from dockyard.metadata.engine import create_sync_engine
from dockyard.settings import Settings


class CommandError(Exception):
    """A command cannot do what was asked; the message says why."""


@contextmanager
def transaction(settings: Settings) -> Iterator[sa.Connection]:
    """One transaction on the registry's database, schema brought up to date."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.database_url)
    engine = create_sync_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn
    finally:
        engine.dispose()


def load(args: argparse.Namespace) -> Settings:
    settings = settings_from(args)
    if settings is None:
        raise CommandError("invalid configuration")
    return settings
