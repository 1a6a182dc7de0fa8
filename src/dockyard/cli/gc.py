"""`dockyard gc`: collect unreachable manifests and unused blobs.

It works on the database and storage of a running registry: deletions go in
short transactions of a batch each, and every item's condition is re-checked
inside them, so pushes and pulls go on. What goes (or would go, with --dry-run)
is printed on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from dockyard.cli.database import CommandError, load
from dockyard.cli.options import add_config_option
from dockyard.services.gc import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_GRACE,
    DEFAULT_KEEP_UNTAGGED,
    GarbageCollector,
    GcOptions,
    GcReport,
    Removal,
)
from dockyard.settings import Settings
from dockyard.storage.base import LockTimeout


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "gc", help="delete unreachable manifests and unused blobs"
    )
    _add_arguments(parser)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument(
        "--dry-run", action="store_true", help="only print what would be deleted"
    )
    parser.add_argument(
        "--grace",
        type=_seconds,
        default=DEFAULT_GRACE,
        metavar="SECONDS",
        help=f"keep blobs and blob links younger than this (default {DEFAULT_GRACE:g})",
    )
    parser.add_argument(
        "--keep-untagged",
        type=_seconds,
        default=DEFAULT_KEEP_UNTAGGED,
        metavar="SECONDS",
        help="keep unreachable manifests younger than this "
        f"(default {DEFAULT_KEEP_UNTAGGED:g})",
    )
    parser.add_argument(
        "--batch-size",
        type=_positive,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help="delete at most N items per database transaction "
        f"(default {DEFAULT_BATCH_SIZE})",
    )
    parser.set_defaults(handler=run)


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    try:
        settings = load(args)
        _check_schema(settings)
        options = GcOptions(
            dry_run=args.dry_run,
            grace=args.grace,
            keep_untagged=args.keep_untagged,
            batch_size=args.batch_size,
        )
        report = anyio.run(_collect, settings, options)
    except CommandError as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return 1
    except LockTimeout:
        print("dockyard: another garbage collection is running", file=sys.stderr)
        return 1
    print(_summary(report))
    return 1 if report.errors else 0


def _check_schema(settings: Settings) -> None:
    # A collector must not migrate the database of a running registry.
    from dockyard.metadata import migrate

    current = migrate.current_revision(settings.database_url)
    if current != migrate.head_revision():
        raise CommandError(
            f"database schema is {current or 'empty'}, not current: "
            "run `dockyard db upgrade` first"
        )


async def _collect(settings: Settings, options: GcOptions) -> GcReport:
    from dockyard.metadata.executor import create_executor
    from dockyard.storage.configure import driver_from_settings

    executor = create_executor(settings.database_url)
    storage = driver_from_settings(settings)
    collector = GarbageCollector(
        executor,
        storage,
        options,
        on_removal=_printer(options.dry_run),
        on_progress=_print_progress,
    )
    try:
        return await collector.run()
    finally:
        await executor.close()


def _printer(dry_run: bool) -> Callable[[Removal], None]:
    verb = "would delete" if dry_run else "deleted"

    def show(removal: Removal) -> None:
        where = f"{removal.repository}@" if removal.repository else ""
        size = f" ({_human(removal.size)})" if removal.kind != "link" else ""
        print(f"{verb} {removal.kind} {where}{removal.digest}{size}", flush=True)

    return show


def _print_progress(phase: str, done: int, total: int) -> None:
    print(f"gc: {phase}: {done}/{total}", file=sys.stderr, flush=True)


def _summary(report: GcReport) -> str:
    verb = "would delete" if report.dry_run else "deleted"
    freed = report.blob_bytes + report.manifest_bytes
    line = (
        f"{verb} {report.manifests} manifests, {report.links} blob links and "
        f"{report.blobs} blobs; {'would free' if report.dry_run else 'freed'} "
        f"{_human(freed)} ({freed} bytes)"
    )
    if report.skipped or report.restored or report.errors:
        line += (
            f"; {report.skipped} kept because they were used again, "
            f"{report.restored} files restored, {report.errors} errors"
        )
    return line


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m dockyard.cli.gc`, until `dockyard gc` is registered in main."""
    parser = argparse.ArgumentParser(
        prog="dockyard gc", description="Delete unreachable manifests and blobs."
    )
    _add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
