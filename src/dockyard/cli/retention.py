"""`dockyard retention list|set|remove|run`: retention rules, and applying them.

Rule changes go to the database directly (no running server needed) and into
the audit log, as the management API's do. `run` works beside a serving
registry like `dockyard gc`: each deletion is its own short transaction that
re-checks its condition. It deletes tags and manifests; `dockyard gc` (or the
scheduled collection) frees their blobs afterwards.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio

from dockyard.cli.database import CommandError, load, transaction
from dockyard.cli.options import add_config_option
from dockyard.metadata import accounts, retention
from dockyard.metadata.retention import InvalidRule, RetentionRule
from dockyard.services.retention import (
    Decision,
    RetentionReport,
    RetentionService,
    RunOptions,
)
from dockyard.settings import Settings

ACTOR = "cli"

Handler = Callable[[argparse.Namespace], int]


def register(commands: Any) -> None:
    group = commands.add_parser(
        "retention", help="keep the tags that matter, drop the rest"
    )
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = _command(actions, "list", list_rules, "list the rules")
    listing.add_argument("namespace", nargs="?", help="only this namespace's rules")

    setting = _command(
        actions, "set", set_rule, "create or replace a namespace's rule for a pattern"
    )
    setting.add_argument("namespace")
    _repository_option(setting)
    number = {"type": int, "metavar": "N"}
    setting.add_argument("--keep-newest", **number, help="keep the N newest tags")
    setting.add_argument(
        "--keep-tag",
        action="append",
        default=[],
        dest="keep_tags",
        metavar="GLOB",
        help="keep tags matching this glob, e.g. 'v*' (repeatable)",
    )
    setting.add_argument(
        "--keep-pulled-days", **number, help="keep tags pulled in the last N days"
    )
    setting.add_argument(
        "--untagged-days", **number, help="delete untagged manifests older than N days"
    )
    setting.add_argument(
        "--keep-pinned",
        action="store_true",
        help="keep untagged manifests pulled by digest (in the pull window if set)",
    )

    removal = _command(actions, "remove", remove_rule, "remove a rule")
    removal.add_argument("namespace")
    _repository_option(removal)

    running = _command(actions, "run", run_rules, "apply the rules now")
    running.add_argument(
        "--dry-run", action="store_true", help="only print what would go and why"
    )
    running.add_argument("--namespace", help="only this namespace's rules")


def _command(actions: Any, name: str, handler: Handler, text: str) -> Any:
    parser = actions.add_parser(name, help=text)
    add_config_option(parser)
    parser.set_defaults(handler=_guarded(handler))
    return parser


def _repository_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repository",
        default="*",
        metavar="GLOB",
        help="repositories inside the namespace (default: all)",
    )


def _guarded(handler: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (CommandError, InvalidRule, accounts.NotFound) as exc:
            print(f"dockyard: {exc}", file=sys.stderr)
            return 1

    return run


def list_rules(args: argparse.Namespace) -> int:
    with transaction(load(args)) as conn:
        for rule in retention.list_rules(conn, args.namespace):
            print(rule.describe())
    return 0


def set_rule(args: argparse.Namespace) -> int:
    rule = RetentionRule(
        args.namespace,
        repository_pattern=args.repository,
        keep_newest=args.keep_newest,
        keep_tags=tuple(args.keep_tags),
        keep_pulled_days=args.keep_pulled_days,
        untagged_days=args.untagged_days,
        keep_pinned=args.keep_pinned,
    ).validate()
    _change(args, "retention.set", partial(retention.set_rule, rule=rule))
    print(rule.describe())
    return 0


def remove_rule(args: argparse.Namespace) -> int:
    _change(
        args,
        "retention.removed",
        partial(
            retention.remove_rule,
            namespace=args.namespace,
            repository_pattern=args.repository,
        ),
    )
    print(f"retention rule {args.namespace}/{args.repository} removed")
    return 0


def _change(
    args: argparse.Namespace, action: str, change: Callable[[Any], None]
) -> None:
    """Make one change to a namespace's rules, and note it in the audit log."""
    event = {"actor": ACTOR, "outcome": "success", "namespace": args.namespace}
    with transaction(load(args)) as conn:
        change(conn)
        accounts.record_event(conn, action=action, target=args.repository, **event)


def run_rules(args: argparse.Namespace) -> int:
    settings = load(args)
    _check_schema(settings)
    options = RunOptions(dry_run=args.dry_run, namespace=args.namespace)
    report = anyio.run(_run, settings, options)
    print(summary(report))
    return 0


def _check_schema(settings: Settings) -> None:
    # Like the collector, a run must not migrate a serving registry's database.
    from dockyard.metadata import migrate

    if migrate.current_revision(settings.database_url) != migrate.head_revision():
        raise CommandError(
            "the database schema is not current: run `dockyard db upgrade`"
        )


async def _run(settings: Settings, options: RunOptions) -> RetentionReport:
    from dockyard.metadata.executor import create_executor

    executor = create_executor(settings.database_url)
    try:
        return await RetentionService(executor).run(
            options,
            on_decision=_printer(options.dry_run),
            on_progress=_print_progress,
        )
    finally:
        await executor.close()


def _printer(dry_run: bool) -> Callable[[Decision], None]:
    def show(decision: Decision) -> None:
        if decision.delete:
            verb = "would delete" if dry_run else "deleted"
        elif dry_run:
            verb = "keep"
        else:
            # A real run lists what it deleted; the dry run explains the rest.
            return
        pointing = f" ({decision.digest})" if decision.kind == "tag" else ""
        print(
            f"{verb} {decision.kind} {decision.target()}{pointing}: {decision.reason}",
            flush=True,
        )

    return show


def _print_progress(done: int, total: int) -> None:
    print(f"retention: {done}/{total} repositories", file=sys.stderr, flush=True)


def summary(report: RetentionReport) -> str:
    verb = "would delete" if report.dry_run else "deleted"
    line = (
        f"{verb} {report.tags_deleted} tags and {report.manifests_deleted} manifests "
        f"in {report.repositories} repositories ({report.tags} tags and "
        f"{report.manifests} untagged manifests examined)"
    )
    if report.skipped:
        line += f"; {report.skipped} kept because they changed since planned"
    return line + "; `dockyard gc` frees their blobs"
