"""The `dockyard` command: one sub-command group per module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dockyard import __version__
from dockyard.cli import accounts as account_commands
from dockyard.cli import config as config_commands
from dockyard.cli import db as db_commands
from dockyard.cli import fsck as fsck_command
from dockyard.cli import gc as gc_command
from dockyard.cli import retention as retention_commands
from dockyard.cli import serve as serve_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dockyard", description="An OCI Distribution v1.1 container registry."
    )
    parser.add_argument(
        "--version", action="version", version=f"dockyard {__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve_command.register(commands)
    config_commands.register(commands)
    db_commands.register(commands)
    fsck_command.register(commands)
    gc_command.register(commands)
    retention_commands.register(commands)
    account_commands.register_users(commands)
    account_commands.register_namespaces(commands)
    account_commands.register_tag_rules(commands)
    account_commands.register_robots(commands)
    account_commands.register_audit(commands)
    account_commands.register_keys(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    result: int = args.handler(args)
    return result
