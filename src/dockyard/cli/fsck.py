"""`dockyard fsck`: verify blobs against their digests and storage against metadata."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from dockyard.cli.database import CommandError, load
from dockyard.cli.options import add_config_option
from dockyard.metadata import migrate
from dockyard.metadata.executor import create_executor
from dockyard.services.fsck import Fsck, FsckReport
from dockyard.storage.configure import driver_from_settings


def register(commands: Any) -> None:
    fsck = commands.add_parser(
        "fsck", help="check blobs and metadata, optionally repair"
    )
    add_config_option(fsck)
    fsck.add_argument("--repair", action="store_true", help="fix what can be fixed")
    fsck.add_argument(
        "--no-verify-content",
        action="store_true",
        help="compare sizes only, without hashing every blob",
    )
    fsck.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = load(args)
    except CommandError as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return 2
    migrate.upgrade(settings.database_url)
    report = asyncio.run(_check(settings, args))
    for finding in report.findings:
        state = " (repaired)" if finding.repaired else ""
        print(f"{finding.kind}\t{finding.digest}\t{finding.detail}{state}")
    print(
        f"checked {report.checked} blob(s), {report.checked_bytes} bytes: "
        f"{len(report.findings)} problem(s)",
        file=sys.stderr,
    )
    unrepaired = [f for f in report.findings if not f.repaired]
    return 0 if not unrepaired else 1


async def _check(settings: Any, args: argparse.Namespace) -> FsckReport:
    executor = create_executor(settings.database_url)
    storage = driver_from_settings(settings)
    try:
        return await Fsck(executor, storage).run(
            verify_content=not args.no_verify_content,
            repair=args.repair,
            progress=lambda done, total: print(
                f"checked {done}/{total} blobs", file=sys.stderr
            ),
        )
    finally:
        await executor.close()
