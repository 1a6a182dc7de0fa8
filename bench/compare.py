"""Compare Dockyard with Distribution 2.8.2 side by side on loopback.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/compare.py [--runs 3] [--blob-mib 256] [--skip-memory]

See bench/README.md for what each workload measures and how to read the ratios.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from benchlib import BenchError
from benchlib.blobs import MIB, make_blob_file
from benchlib.report import (
    REFERENCE,
    SUBJECT,
    auth_cost,
    summarise,
    table,
    write_json,
)
from benchlib.servers import (
    DOCKYARD_AUTH,
    RunningServer,
    ensure_distribution,
    new_admin_credentials,
    start_distribution,
    start_dockyard,
    try_apt_install,
)
from benchlib.workloads import (
    AUTH_HEAD,
    FAILURES,
    HEAD,
    MEMORY_PULL,
    MEMORY_PUSH,
    Measurement,
    Settings,
    measure_auth_head,
    measure_head,
    measure_memory,
    measure_pull,
    measure_push,
    prepare_image,
)

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
MEMORY_BLOB_MIB = 1024
MEMORY_LIMIT_MIB = 150.0
MAX_RUNS = 50


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repeats per workload")
    parser.add_argument("--blob-mib", type=int, default=256, help="push/pull size")
    parser.add_argument(
        "--skip-memory", action="store_true", help="skip the 1 GiB peak-RSS phase"
    )
    parser.add_argument(
        "--skip-auth",
        action="store_true",
        help="skip the HEAD load against a second Dockyard with token auth",
    )
    parser.add_argument("--workers", type=int, default=2, help="Dockyard workers")
    parser.add_argument(
        "--servers",
        default="dockyard,distribution",
        help="comma-separated subset of dockyard,distribution",
    )
    parser.add_argument("--concurrency", type=int, default=50, help="HEAD connections")
    parser.add_argument("--duration", type=float, default=5.0, help="HEAD seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="HEAD warm-up s")
    parser.add_argument("--loadgen", choices=["auto", "hey", "python"], default="auto")
    parser.add_argument(
        "--quiet-threshold",
        type=float,
        default=0.35,
        help="machine CPU share (busy+steal) under which a timing may start",
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=20.0, help="longest wait for quiet, s"
    )
    parser.add_argument("--python", default=sys.executable, help="Dockyard's python")
    parser.add_argument(
        "--dockyard-log-level",
        default="warning",
        help="passed as --log-level; empty for Dockyard's default",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= MAX_RUNS:
        parser.error(f"--runs must be between 1 and {MAX_RUNS}")
    if args.blob_mib < 1 or args.duration <= 0 or args.concurrency < 1:
        parser.error("--blob-mib, --duration and --concurrency must be positive")
    return args


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


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def start_servers(
    args: argparse.Namespace, workdir: Path, stack: ExitStack
) -> tuple[list[RunningServer], dict[str, str]]:
    """Start the requested servers; one that fails is reported and left out."""
    servers: list[RunningServer] = []
    failures: dict[str, str] = {}
    for name in _wanted(args):
        label = SUBJECT if name == "dockyard" else REFERENCE
        start = functools.partial(_start_one, name, args, workdir)
        server = _bring_up(label, start, stack, failures)
        if server is not None:
            servers.append(server)
    return servers, failures


def start_auth_server(
    args: argparse.Namespace,
    workdir: Path,
    stack: ExitStack,
    failures: dict[str, str],
) -> RunningServer | None:
    """A second Dockyard with authentication on, unless skipped or not wanted."""
    if args.skip_auth or "dockyard" not in _wanted(args):
        return None

    def start() -> RunningServer:
        return start_dockyard(
            args.python,
            workdir,
            args.workers,
            args.dockyard_log_level,
            credentials=new_admin_credentials(),
        )

    return _bring_up(DOCKYARD_AUTH, start, stack, failures)


def _wanted(args: argparse.Namespace) -> list[str]:
    return [name.strip().lower() for name in args.servers.split(",")]


def _bring_up(
    label: str,
    start: Callable[[], RunningServer],
    stack: ExitStack,
    failures: dict[str, str],
) -> RunningServer | None:
    """Start one server, stopped with ``stack``; a failure is reported and None."""
    try:
        server = start()
    except BenchError as error:
        failures[label] = str(error)
        print(f"!! {label} did not start: {error}", flush=True)
        return None
    stack.callback(server.stop)
    try:
        server.wait_ready()
    except BenchError as error:
        failures[server.name] = str(error)
        print(f"!! {server.name} did not start: {error}", flush=True)
        return None
    print(f"{server.name} ready on port {server.port} (pid {server.pid})")
    return server


def _start_one(name: str, args: argparse.Namespace, workdir: Path) -> RunningServer:
    if name == "dockyard":
        return start_dockyard(
            args.python, workdir, args.workers, args.dockyard_log_level
        )
    if name == "distribution":
        return start_distribution(ensure_distribution(), workdir)
    raise BenchError(f"unknown server {name!r}")


def _show(sample: Measurement, runs: int) -> None:
    label = f"[run {sample.run}/{runs}] {sample.server} {sample.workload}"
    if sample.value is None:
        print(f"{label}: ERROR {sample.error}", flush=True)
        return
    extra = ""
    if "generator_cores" in sample.details:
        extra = (
            f", generator {sample.details['generator_cores']:.2f} cores,"
            f" server {sample.details['server_cores']:.2f} cores"
        )
    print(
        f"{label}: {sample.value:,.1f} {sample.unit} "
        f"({sample.seconds:.2f} s, steal {sample.steal:.0%}{extra})",
        flush=True,
    )


def _in_turn(servers: list[RunningServer], run: int) -> list[RunningServer]:
    # Alternate who goes first so neither always meets the warmer machine.
    return servers if run % 2 else servers[::-1]


def run_transfers(
    servers: list[RunningServer],
    auth: RunningServer | None,
    args: argparse.Namespace,
    settings: Settings,
    workdir: Path,
    samples: list[Measurement],
) -> None:
    """Push, pull and HEAD workloads, ``--runs`` times, on every server.

    ``auth``, a Dockyard with authentication on, only takes the HEAD load, in
    turn with the others.
    """
    heads = servers + ([auth] if auth else [])
    images = {server.name: _prepare(server) for server in heads}
    for run in range(1, args.runs + 1):
        blob = make_blob_file(workdir / f"blob-{run}.bin", args.blob_mib * MIB, run)
        pushed: set[str] = set()
        for server in _in_turn(servers, run):
            sample = measure_push(server, blob, run, settings)
            _record(sample, samples, args.runs)
            if sample.error is None:
                pushed.add(server.name)
        for server in _in_turn(servers, run):
            if server.name in pushed:
                _record(measure_pull(server, blob, run, settings), samples, args.runs)
        for server in _in_turn(heads, run):
            _record(
                _head_sample(server, images[server.name], run, settings),
                samples,
                args.runs,
            )
        blob.path.unlink()


def _head_sample(
    server: RunningServer, image: str | Measurement, run: int, settings: Settings
) -> Measurement:
    if isinstance(image, Measurement):
        return Measurement(
            image.server, image.workload, run, "req/s", error=image.error
        )
    if server.credentials is None:
        return measure_head(server, image, run, settings)
    return measure_auth_head(server, image, run, settings, SUBJECT)


def _prepare(server: RunningServer) -> str | Measurement:
    try:
        return prepare_image(server)
    except FAILURES as error:
        print(f"!! {server.name}: pushing the HEAD test image failed: {error}")
        if server.credentials is None:
            return Measurement(server.name, HEAD, 0, "req/s", error=str(error))
        return Measurement(SUBJECT, AUTH_HEAD, 0, "req/s", error=str(error))


def _record(sample: Measurement, samples: list[Measurement], runs: int) -> None:
    samples.append(sample)
    _show(sample, runs)


def run_memory(
    servers: list[RunningServer],
    args: argparse.Namespace,
    settings: Settings,
    workdir: Path,
    samples: list[Measurement],
) -> None:
    """Peak RSS while each server takes and serves a 1 GiB blob."""
    print(f"writing a {MEMORY_BLOB_MIB} MiB blob for the memory phase ...", flush=True)
    blob = make_blob_file(workdir / "blob-memory.bin", MEMORY_BLOB_MIB * MIB, 0)
    for run in range(1, args.runs + 1):
        for server in _in_turn(servers, run):
            for sample in measure_memory(server, blob, run, settings):
                _record(sample, samples, args.runs)
    blob.path.unlink()


def memory_verdicts(samples: list[Measurement]) -> list[str]:
    """Whether each server's peak RSS stayed under the limit in every sample."""
    lines = []
    for server in (SUBJECT, REFERENCE):
        peaks = [
            s.value
            for s in samples
            if s.server == server
            and s.workload in (MEMORY_PUSH, MEMORY_PULL)
            and s.value is not None
        ]
        if not peaks:
            continue
        verdict = "yes" if max(peaks) < MEMORY_LIMIT_MIB else "NO"
        lines.append(
            f"{server}: highest peak RSS {max(peaks):.1f} MiB over {len(peaks)} "
            f"samples; under {MEMORY_LIMIT_MIB:.0f} MiB: {verdict}"
        )
    return lines


def load_notes(samples: list[Measurement]) -> list[str]:
    """How much CPU the HEAD load generator took next to each server."""
    lines = []
    for server, workload, name in (
        (SUBJECT, HEAD, "HEAD"),
        (SUBJECT, AUTH_HEAD, "token-auth HEAD"),
        (REFERENCE, HEAD, "HEAD"),
    ):
        heads = [
            s.details
            for s in samples
            if s.server == server and s.workload == workload and s.details
        ]
        if not heads:
            continue
        generator = statistics.median(float(str(d["generator_cores"])) for d in heads)
        serving = statistics.median(float(str(d["server_cores"])) for d in heads)
        cores = os.cpu_count() or 1
        lines.append(
            f"{server} {name} load ({heads[0]['tool']}): generator {generator:.2f} "
            f"cores ({generator / cores:.0%} of {cores}), server {serving:.2f} "
            "cores (medians)"
        )
    return lines


def auth_cost_lines(samples: list[Measurement]) -> list[str]:
    """Dockyard's HEAD throughput with token auth relative to without."""
    if not any(s.workload == AUTH_HEAD for s in samples):
        return []
    cost = auth_cost(summarise(samples))
    value = "n/a" if cost is None else f"{cost:.2f}"
    return [f"token auth cost: HEAD req/s with auth / without auth = {value}"]


def describe(args: argparse.Namespace, loadgen: str) -> dict[str, object]:
    """Settings and machine facts stored alongside the samples."""
    return {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": sys.argv,
        "args": vars(args),
        "loadgen": loadgen,
        "cpu_count": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "distribution_version": _version(["docker-registry", "--version"]),
        "hey_version": _version(["dpkg-query", "-W", "-f", "${Version}", "hey"]),
        "dockyard_commit": _version(["git", "-C", str(BENCH_DIR), "rev-parse", "HEAD"]),
    }


def _version(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


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


def benchmark(
    args: argparse.Namespace,
    settings: Settings,
    workdir: Path,
    samples: list[Measurement],
    meta: dict[str, object],
) -> None:
    """Start the servers, run every phase, stop the servers."""
    with ExitStack() as stack:
        servers, failures = start_servers(args, workdir, stack)
        auth = start_auth_server(args, workdir, stack, failures)
        meta["startup_failures"] = failures
        if not servers:
            raise BenchError("no server started")
        try:
            run_transfers(servers, auth, args, settings, workdir, samples)
            if not args.skip_memory:
                run_memory(servers, args, settings, workdir, samples)
        finally:
            meta["servers"] = server_health(servers + ([auth] if auth else []))


def report(samples: list[Measurement], meta: dict[str, object]) -> Path:
    """Print the medians table and notes, and write the JSON results."""
    print()
    print(table(summarise(samples)))
    notes = auth_cost_lines(samples) + load_notes(samples)
    for line in notes + memory_verdicts(samples):
        print(line)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"compare-{stamp}.json"
    write_json(path, meta, samples)
    print(f"results written to {path}")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    samples: list[Measurement] = []
    status = 0
    try:
        loadgen = choose_loadgen(args.loadgen)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = Settings(
        concurrency=args.concurrency,
        duration=args.duration,
        warmup=args.warmup,
        loadgen=loadgen,
        quiet_threshold=args.quiet_threshold,
        quiet_wait=args.quiet_wait,
    )
    meta = describe(args, loadgen)
    workdir = Path(tempfile.mkdtemp(prefix="dockyard-bench-"))
    try:
        benchmark(args, settings, workdir, samples, meta)
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
        report(samples, meta)
    return status


if __name__ == "__main__":
    sys.exit(main())
