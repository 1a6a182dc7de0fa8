"""`dockyard db upgrade|current`: schema migrations."""

from __future__ import annotations

import argparse
from typing import Any

from dockyard.cli.options import add_config_option, settings_from


def register(commands: Any) -> None:
    db = commands.add_parser("db", help="manage the metadata database")
    actions = db.add_subparsers(dest="action", metavar="ACTION", required=True)
    upgrade = actions.add_parser("upgrade", help="apply pending migrations")
    add_config_option(upgrade)
    upgrade.set_defaults(handler=run_upgrade)
    current = actions.add_parser("current", help="print the schema revision")
    add_config_option(current)
    current.set_defaults(handler=run_current)


def run_upgrade(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if settings is None:
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    from dockyard.metadata import migrate

    migrate.upgrade(settings.database_url)
    print(f"database at revision {migrate.current_revision(settings.database_url)}")
    return 0


def run_current(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if settings is None:
        return 2
    from dockyard.metadata import migrate

    current = migrate.current_revision(settings.database_url)
    head = migrate.head_revision()
    state = "current" if current == head else f"behind (newest is {head})"
    print(f"{current or 'empty'}: {state}")
    return 0
