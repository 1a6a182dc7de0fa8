"""`dockyard config check`: validate a configuration without starting anything."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dockyard.settings import ConfigError, as_plain, load_settings


def register(commands: Any) -> None:
    config = commands.add_parser("config", help="inspect the configuration")
    actions = config.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check", help="validate a configuration file and print every problem"
    )
    check.add_argument("file", type=Path, nargs="?", help="YAML or TOML file")
    check.add_argument(
        "--show", action="store_true", help="print the resulting settings as JSON"
    )
    check.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.file)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) found", file=sys.stderr)
        return 1
    if args.show:
        print(json.dumps(as_plain(settings), indent=2))
    print(f"{args.file or 'configuration'}: ok")
    return 0
