"""Compare Dockyard with Distribution 2.8.2 side by side on loopback.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/compare.py [--runs 3] [--only push,pull] [--output FILE]

See bench/README.md for what each workload measures and how to read the table.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from functools import partial
from pathlib import Path

from benchlib import BenchError
from benchlib.blobs import MIB
from benchlib.measure import Measurement, Quiet
from benchlib.procstat import MemoryWatch
from benchlib.report import client_table, markdown_table, notes, write_json
from benchlib.rows import MEMORY_PSS, MEMORY_RSS, Sizes, table_rows
from benchlib.runner import Runner
from benchlib.servers import (
    RunningServer,
    ensure_distribution,
    managed,
    new_admin_credentials,
    start_distribution,
    start_dockyard,
    stop_on_sigterm,
    try_apt_install,
    wait_all,
)
from benchlib.skopeo import Skopeo
from benchlib.summary import results
from benchlib.workloads import WORKLOAD_NAMES, Settings, build_workloads

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
MAX_RUNS = 50


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--runs", type=int, default=3, help="runs; the table shows medians")
    add(
        "--only", default=",".join(WORKLOAD_NAMES), help="workloads to run: %(default)s"
    )
    add("--workers", type=int, default=os.cpu_count() or 1, help="Dockyard workers")
    add("--blob-mib", type=int, default=256, help="size of the push/pull blob")
    add("--chunk-mib", type=int, default=8, help="PATCH size of the chunked push")
    add("--pull-clients", type=int, default=8, help="clients of the parallel pull")
    add("--pull-rounds", type=int, default=4, help="times each client pulls the blob")
    add("--connections", type=int, default=64, help="connections of the loads")
    add("--duration", type=float, default=5.0, help="seconds of each load")
    add("--warmup", type=float, default=1.0, help="seconds of warm-up before a load")
    add("--tags", type=int, default=1000, help="tags in the tags/list repository")
    add("--small-blobs", type=int, default=500, help="4 KiB blobs pushed")
    add("--small-clients", type=int, default=16, help="clients pushing them")
    add("--image-mib", type=int, default=100, help="size of the skopeo image")
    add("--layers", type=int, default=5, help="layers of the skopeo image")
    add("--cpu-requests", type=int, default=5000, help="HEADs of the CPU count")
    add("--loadgen", choices=["auto", "hey", "python"], default="auto")
    add("--quiet-threshold", type=float, default=0.35, help="CPU share to start at")
    add("--quiet-wait", type=float, default=5.0, help="longest wait for quiet, s")
    add("--servers", default="dockyard,distribution", help="a subset to run")
    add("--output", type=Path, help="also write the Markdown report to this file")
    add("--python", default=sys.executable, help="the Python that runs Dockyard")
    args = parser.parse_args(argv)
    args.only = _names(args.only)
    unknown = set(args.only) - set(WORKLOAD_NAMES)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; pick from {WORKLOAD_NAMES}")
    if not 1 <= args.runs <= MAX_RUNS:
        parser.error(f"--runs must be between 1 and {MAX_RUNS}")
    counts = [args.blob_mib, args.chunk_mib, args.pull_clients, args.pull_rounds]
    counts += [args.connections]
    counts += [args.tags, args.small_blobs, args.small_clients, args.image_mib]
    if min(counts) < 1 or args.duration <= 0 or args.layers < 1:
        parser.error("sizes, counts and --duration must be positive")
    return args


def _names(text: str) -> list[str]:
    return [name.strip().lower() for name in text.split(",") if name.strip()]


def sizes_of(args: argparse.Namespace) -> Sizes:
    return Sizes(
        blob_mib=args.blob_mib,
        chunk_mib=args.chunk_mib,
        pull_clients=args.pull_clients,
        pull_rounds=args.pull_rounds,
        connections=args.connections,
        tags=args.tags,
        small_blobs=args.small_blobs,
        small_clients=args.small_clients,
        image_mib=args.image_mib,
        layers=args.layers,
    )


def choose_loadgen(requested: str) -> str:
    """``hey`` when it is (or can be) installed, else the Python generator."""
    if requested == "python":
        return "python"
    if try_apt_install("hey", "hey"):
        return "hey"
    if requested == "hey":
        raise BenchError("hey is not installed: `apt-get install -y hey`")
    print("hey unavailable: using the Python load generator", flush=True)
    return "python"


def start_servers(
    args: argparse.Namespace, workdir: Path, stack: ExitStack
) -> tuple[list[RunningServer], RunningServer | None]:
    """The servers under test, and a Dockyard with auth on when it is needed."""
    wanted = _names(args.servers)
    servers = []
    if "dockyard" in wanted:
        dockyard = start_dockyard(args.python, workdir, args.workers)
        servers.append(managed(stack, dockyard))
    if "distribution" in wanted:
        distribution = start_distribution(ensure_distribution(), workdir)
        servers.append(managed(stack, distribution))
    if not servers:
        raise BenchError(f"--servers {args.servers!r} names no known server")
    auth = None
    if "auth" in args.only and "dockyard" in wanted:
        credentials = new_admin_credentials()
        auth = start_dockyard(args.python, workdir, args.workers, credentials)
        managed(stack, auth)
    wait_all(servers + ([auth] if auth else []))
    return servers, auth


def make_skopeo(
    args: argparse.Namespace, workdir: Path, servers: list[RunningServer]
) -> Skopeo | None:
    if "skopeo" not in args.only:
        return None
    hosts = [server.base_url.removeprefix("http://") for server in servers]
    try:
        return Skopeo(workdir, hosts)
    except BenchError as error:
        print(f"!! skipping the skopeo workload: {error}", flush=True)
        return None


def show(units: dict[str, str], sample: Measurement) -> None:
    """One progress line per sample."""
    label = f"[run {sample.run}] {sample.server} {sample.row}"
    if sample.value is None:
        print(f"{label}: ERROR {sample.error}", flush=True)
        return
    extra = ""
    if "client_cores" in sample.details:
        extra = (
            f", client {float(str(sample.details['client_cores'])):.2f} cores,"
            f" server {float(str(sample.details['server_cores'])):.2f} cores"
        )
    print(
        f"{label}: {sample.value:,.2f} {units.get(sample.row, '')} "
        f"({sample.seconds:.2f} s, "
        f"steal {sample.steal:.0%}{extra})",
        flush=True,
    )


def memory_samples(watches: dict[str, MemoryWatch]) -> list[Measurement]:
    """Each server's peak RSS and PSS over everything the benchmark did."""
    samples = []
    for name, watch in watches.items():
        watch.stop()
        details: dict[str, object] = {
            "idle_rss_mib": watch.idle.rss / MIB,
            "idle_pss_mib": watch.idle.pss / MIB,
            "processes": watch.peak_processes,
        }
        samples.append(Measurement(name, MEMORY_RSS, 0, watch.peak_rss / MIB))
        samples.append(Measurement(name, MEMORY_PSS, 0, watch.peak_pss / MIB))
        samples[-1].details = samples[-2].details = details
    return samples


def benchmark(
    args: argparse.Namespace,
    settings: Settings,
    samples: list[Measurement],
    meta: dict[str, object],
) -> None:
    """Start the servers, prepare and run the workloads, stop the servers."""
    with ExitStack() as stack:
        servers, auth = start_servers(args, settings.workdir, stack)
        watches = {s.name: MemoryWatch(s.pid).start() for s in servers}
        skopeo = make_skopeo(args, settings.workdir, servers)
        workloads = build_workloads(args.only, settings, auth, skopeo)
        units = {row.key: row.unit for row in table_rows(settings.sizes)}
        runner = Runner(servers, workloads, settings, partial(show, units))
        try:
            runner.prepare()
            runner.run(args.runs)
        finally:
            samples.extend(runner.samples)
            samples.extend(memory_samples(watches))
            meta["servers"] = server_health(servers + ([auth] if auth else []))


def server_health(servers: list[RunningServer]) -> dict[str, dict[str, object]]:
    """Exit codes and log tails, to spot crashes and logged errors."""
    health: dict[str, dict[str, object]] = {}
    for server in servers:
        code = server.process.poll()
        tail = server.log_tail()
        health[server.name] = {"exit_code": code, "log_tail": tail}
        if code is not None:
            print(f"!! {server.name} exited during the benchmark with code {code}")
        if "Traceback" in tail:
            print(f"!! {server.name} logged a traceback; see the JSON log_tail")
    return health


def describe(args: argparse.Namespace, loadgen: str) -> dict[str, object]:
    """Settings and machine facts stored alongside the samples."""
    return {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": sys.argv,
        "args": {key: str(value) for key, value in vars(args).items()},
        "loadgen": loadgen,
        "cpu_count": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "distribution_version": _version(["docker-registry", "--version"]),
        "hey_version": _version(["dpkg-query", "-W", "-f", "${Version}", "hey"]),
        "skopeo_version": _version(["skopeo", "--version"]),
        "dockyard_commit": _version(["git", "-C", str(BENCH_DIR), "rev-parse", "HEAD"]),
        # What runs is the working tree: list what differs from that commit.
        "dockyard_uncommitted": _version(
            ["git", "-C", str(BENCH_DIR.parent), "status", "--porcelain", "--", "src"]
        ),
    }


def _version(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def headline(args: argparse.Namespace, meta: dict[str, object]) -> str:
    """What ran against what, and how busy the machine was."""
    commit = str(meta.get("dockyard_commit") or "unknown")[:10]
    if meta.get("dockyard_uncommitted"):
        commit += " with uncommitted changes in src/"
    started = meta.get("loadavg_at_start")
    loadavg = "unknown"
    if isinstance(started, tuple):
        loadavg = ", ".join(f"{x:.1f}" for x in started)
    generator = f"{meta['loadgen']} {meta.get('hey_version') or ''}".strip()
    return (
        f"Dockyard {commit} ({args.workers} workers) vs "
        f"{meta['distribution_version']}; {args.runs} run(s); small-request load "
        f"generator {generator}; load average at the start {loadavg} "
        f"on {os.cpu_count()} cores."
    )


def report(
    args: argparse.Namespace, samples: list[Measurement], meta: dict[str, object]
) -> None:
    """Print the table and notes, write them to --output and the JSON results."""
    rows = table_rows(sizes_of(args))
    found = results(samples, rows)
    text = "\n\n".join(
        [
            headline(args, meta),
            markdown_table(found),
            client_table(samples, rows),
            "\n".join(f"- {line}" for line in notes(samples, found)),
        ]
    )
    print("\n" + text)
    if args.output is not None:
        args.output.write_text(text + "\n")
        print(f"report written to {args.output}")
    path = RESULTS_DIR / f"compare-{time.strftime('%Y%m%d-%H%M%S')}.json"
    write_json(path, meta, samples, found)
    print(f"samples written to {path}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    try:
        loadgen = choose_loadgen(args.loadgen)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="dockyard-bench-"))
    settings = Settings(
        sizes=sizes_of(args),
        duration=args.duration,
        warmup=args.warmup,
        loadgen=loadgen,
        cpu_requests=args.cpu_requests,
        quiet=Quiet(args.quiet_threshold, args.quiet_wait),
        workdir=workdir,
    )
    meta = describe(args, loadgen)
    samples: list[Measurement] = []
    status = 0
    try:
        benchmark(args, settings, samples, meta)
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped, reporting what was measured")
        meta["interrupted"] = True
        status = 130
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        status = 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if samples:
        report(args, samples, meta)
    return status


if __name__ == "__main__":
    sys.exit(main())
