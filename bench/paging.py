"""Does paging stay fast as a listing grows? tags/list and _catalog at scale.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/paging.py [--tags 100000] [--repos 10000] [--dockyard-only]

Fills one repository with ``--tags`` tags and the registry with ``--repos``
repositories through the HTTP API, then walks both listings ``--page`` names
at a time by following the Link headers, and prints the time per page at the
start, middle and end of each walk. Each walk must return every name once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from benchlib import BenchError
from benchlib.listing import Walk, check_listing, typical, walk
from benchlib.populate import make_repositories, push_config_only_image, tag_many
from benchlib.registry import Page
from benchlib.servers import (
    RunningServer,
    ensure_distribution,
    managed,
    start_distribution,
    start_dockyard,
    stop_on_sigterm,
    wait_all,
)

TAGS_REPO = "bench/paging"
BATCHES = 10


@dataclass
class Listing:
    """One walk's figures for the table."""

    what: str
    server: str
    entries: int
    walk: Walk
    in_order: bool


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--tags", type=int, default=100_000, help="tags in one repository")
    add("--repos", type=int, default=10_000, help="repositories in the catalog")
    add("--page", type=int, default=100, help="n= of every page")
    add("--window", type=int, default=50, help="pages per start/middle/end median")
    add("--walks", type=int, default=3, help="walks of each listing (page medians)")
    add("--writers", type=int, default=16, help="clients filling the registry")
    add(
        "--tags-per-put",
        type=int,
        default=1,
        help="tags per manifest PUT (?tag= parameters) where the server takes them",
    )
    add("--workers", type=int, default=os.cpu_count() or 1, help="Dockyard workers")
    add("--dockyard-only", action="store_true", help="leave Distribution out")
    add("--output", type=Path, help="also write the Markdown table to this file")
    add("--python", default=sys.executable, help="the Python that runs Dockyard")
    args = parser.parse_args(argv)
    counts = [args.tags, args.repos, args.page, args.window, args.writers, args.walks]
    if min(counts + [args.tags_per_put]) < 1:
        parser.error("counts must be positive")
    return args


def populate(server: RunningServer, args: argparse.Namespace) -> None:
    """Tags first, then repositories, with progress lines."""
    tags = [f"t{number:06d}" for number in range(args.tags)]
    repos = [f"bench/r{number:05d}" for number in range(args.repos)]
    with server.client() as client:
        manifest = push_config_only_image(client, TAGS_REPO)
    started = time.monotonic()
    print(f"{server.name}: pushing {len(tags):,} tags ...", flush=True)
    tag_many(
        server, TAGS_REPO, manifest, tags, args.writers, BATCHES, args.tags_per_put
    )
    print(f"{server.name}: creating {len(repos):,} repositories ...", flush=True)
    make_repositories(server, TAGS_REPO, manifest, repos, args.writers, BATCHES)
    print(f"{server.name}: filled in {time.monotonic() - started:.0f} s", flush=True)


def walk_both(server: RunningServer, args: argparse.Namespace) -> list[Listing]:
    """Walk the tag list and the catalog, checking each is complete."""
    tags = [f"t{number:06d}" for number in range(args.tags)]
    repos = [TAGS_REPO] + [f"bench/r{number:05d}" for number in range(args.repos)]
    found = []
    with server.client() as client:

        def tag_page(url: str | None) -> Page:
            return client.tags_page(TAGS_REPO, url, args.page)

        def catalog_page(url: str | None) -> Page:
            return client.catalog_page(url, args.page)

        for what, fetch, expected in (
            ("tags/list", tag_page, tags),
            ("_catalog", catalog_page, repos),
        ):
            walks = [walk(fetch, len(expected), args.page) for _ in range(args.walks)]
            for seen in walks:
                in_order = check_listing(seen, expected, f"{server.name} {what}")
            seen = typical(walks)
            found.append(Listing(what, server.name, len(expected), seen, in_order))
            print(
                f"{server.name} {what}: {args.walks} walks of {seen.pages} pages, "
                f"{sum(seen.page_seconds):.2f} s each (median pages)",
                flush=True,
            )
    return found


def table(listings: list[Listing], args: argparse.Namespace) -> str:
    lines = [
        "| listing | server | entries | pages | total s | ms/page at start "
        "| middle | end | end / start | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for item in listings:
        seen = item.walk
        start, middle, end = (
            seen.window_ms(where, args.window) for where in ("start", "middle", "end")
        )
        remarks = []
        if seen.pages == 1 and item.entries > args.page:
            remarks.append(f"ignores n={args.page}: one answer")
        if not item.in_order:
            remarks.append("not in lexical order")
        lines.append(
            f"| {item.what} | {item.server} | {item.entries:,} | {seen.pages:,} | "
            f"{sum(seen.page_seconds):.2f} | {start:.1f} | {middle:.1f} | "
            f"{end:.1f} | {end / start:.2f} | {'; '.join(remarks)} |"
        )
    lines.append(
        f"\nn={args.page} per page. Each page's time is its median over "
        f"{args.walks} walks; start, middle and end are the medians over "
        f"{args.window} pages there (at most a fifth of the walk). An end / start "
        "near 1 means a page costs the same wherever it is."
    )
    return "\n".join(lines)


def run(args: argparse.Namespace, workdir: Path) -> list[Listing]:
    with ExitStack() as stack:
        servers = [managed(stack, start_dockyard(args.python, workdir, args.workers))]
        if not args.dockyard_only:
            distribution = start_distribution(ensure_distribution(), workdir)
            servers.append(managed(stack, distribution))
        wait_all(servers)
        listings = []
        for server in servers:
            populate(server, args)
            listings += walk_both(server, args)
        return listings


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="dockyard-paging-"))
    try:
        listings = run(args, workdir)
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped")
        return 130
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = table(listings, args)
    print("\n" + text)
    if args.output is not None:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
