"""Options shared by commands that load settings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dockyard.settings import ConfigError, Settings, load_settings


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", "-c", type=Path, help="configuration file (YAML or TOML)"
    )
    parser.add_argument("--data-dir", type=Path, help="where blobs and metadata live")


def settings_from(args: argparse.Namespace, **sections: Any) -> Settings | None:
    """Load settings with the command line's overrides; print problems if any."""
    overrides: dict[str, Any] = {"data_dir": args.data_dir, **sections}
    try:
        return load_settings(args.config, overrides=overrides)
    except ConfigError as exc:
        print("dockyard: invalid configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None
