"""Time `dockyard gc` on a large registry and what it costs concurrent traffic.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/gc_scale.py [--manifests 10000] [--blobs 50000]

Starts one Dockyard on fresh storage, fills it through the HTTP API (small
blobs, image manifests spread over ~100 repositories), deletes about half of
the manifests, then times `dockyard gc --grace 0 --keep-untagged 0` while
measuring 8 MiB blob push and pull throughput, idle and during the collection.
The generator speaks HTTP/1.1 through the standard library's `http.client`, one
keep-alive connection per thread: it makes tens of thousands of small requests,
and httpx would spend several times the CPU on each, CPU that the server shares
on a small machine. See bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import quote

import httpx

HOST = "127.0.0.1"
MIB = 1024 * 1024
READY_TIMEOUT = 30.0
GC_TIMEOUT = 3600.0
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
PROGRESS = re.compile(r"gc: (\w+): \d+/\d+")
SUMMARY = re.compile(
    r"deleted (\d+) manifests, (\d+) blob links and (\d+) blobs; freed .*"
)


@dataclass(frozen=True)
class Plan:
    """The shape of the generated registry."""

    manifests: int
    blobs: int
    repositories: int
    threads: int

    @property
    def blobs_per_manifest(self) -> int:
        return max(2, self.blobs // self.manifests)


@dataclass(frozen=True)
class Throughput:
    """Median push and pull rates over a number of 8 MiB transfers."""

    push: float | None
    pull: float | None
    transfers: int


@dataclass(frozen=True)
class GcRun:
    """One timed `dockyard gc` and the traffic that ran beside it."""

    seconds: float
    summary: str
    busy: Throughput
    # Seconds per progress phase (plan, manifests, links, blobs), in order.
    phases: dict[str, float]


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def start_server(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "dockyard", "serve",
        "--host", HOST, "--port", str(port),
        "--data-dir", str(data_dir),
        "--workers", "2", "--log-level", "warning",
    ]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dockyard exited: {log.read_text()[-2000:]}")
        with suppress(httpx.TransportError):
            if httpx.get(f"http://{HOST}:{port}/v2/", timeout=1).status_code == 200:
                return process
        time.sleep(0.1)
    stop_server(process)
    raise RuntimeError("dockyard did not become ready in time")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def push_blob(client: httpx.Client, repository: str, data: bytes) -> str:
    digest = digest_of(data)
    answer = client.post(
        f"/v2/{repository}/blobs/uploads/", params={"digest": digest}, content=data
    )
    if answer.status_code != 201:
        raise RuntimeError(f"blob push {answer.status_code}: {answer.text[:200]}")
    return digest


class Connection:
    """One keep-alive HTTP/1.1 connection for the generator's small requests."""

    def __init__(self, port: int) -> None:
        self._http = http.client.HTTPConnection(HOST, port, timeout=60)

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def call(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        expect: int = 201,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._http.request(method, path, body=body, headers=headers or {})
        answer = self._http.getresponse()
        text = answer.read()
        if answer.status != expect:
            raise RuntimeError(f"{method} {path}: {answer.status} {text[:200]!r}")

    def upload(self, repository: str, data: bytes) -> str:
        digest = digest_of(data)
        path = f"/v2/{repository}/blobs/uploads/?digest={quote(digest)}"
        self.call("POST", path, data)
        return digest


def push_image(http: Connection, plan: Plan, index: int) -> tuple[str, str]:
    """Push manifest ``index`` with its own small blobs; return (repo, digest)."""
    repository = f"scale/repo{index % plan.repositories:03d}"
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": index})
    config_bytes = config.encode()
    layers = []
    for layer in range(plan.blobs_per_manifest - 1):
        data = f"layer {index} {layer} ".encode() + os.urandom(64)
        layers.append({
            "mediaType": LAYER,
            "digest": http.upload(repository, data),
            "size": len(data),
        })  # fmt: skip
    document = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {
            "mediaType": CONFIG,
            "digest": http.upload(repository, config_bytes),
            "size": len(config_bytes),
        },
        "layers": layers,
    }
    body = json.dumps(document).encode()
    path = f"/v2/{repository}/manifests/t{index}"
    http.call("PUT", path, body, headers={"Content-Type": MANIFEST})
    return repository, digest_of(body)


def run_chunk(port: int, plan: Plan, indexes: range) -> list[tuple[str, str]]:
    with Connection(port) as http:
        return [push_image(http, plan, index) for index in indexes]


def generate(port: int, plan: Plan) -> list[tuple[str, str]]:
    chunk = max(1, plan.manifests // (plan.threads * 8))
    ranges = [
        range(start, min(start + chunk, plan.manifests))
        for start in range(0, plan.manifests, chunk)
    ]
    pushed: list[tuple[str, str]] = []
    with ThreadPoolExecutor(max_workers=plan.threads) as pool:
        for done in pool.map(lambda r: run_chunk(port, plan, r), ranges):
            pushed += done
            if len(pushed) % max(1, plan.manifests // 10) < chunk:
                print(f"  pushed {len(pushed)}/{plan.manifests}", flush=True)
    return pushed


def delete_chunk(port: int, images: list[tuple[str, str]]) -> int:
    with Connection(port) as http:
        for repository, digest in images:
            http.call("DELETE", f"/v2/{repository}/manifests/{digest}", expect=202)
    return len(images)


def delete_half(port: int, images: list[tuple[str, str]], threads: int) -> int:
    victims = images[::2]
    step = max(1, len(victims) // (threads * 4))
    chunks = [victims[i : i + step] for i in range(0, len(victims), step)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return sum(pool.map(lambda c: delete_chunk(port, c), chunks))


def transfer(client: httpx.Client, data: bytes) -> tuple[float, float]:
    """Push then pull one blob; return (push MiB/s, pull MiB/s)."""
    started = time.perf_counter()
    digest = push_blob(client, "bench/throughput", data)
    pushed = time.perf_counter()
    hasher = hashlib.sha256()
    with client.stream("GET", f"/v2/bench/throughput/blobs/{digest}") as answer:
        if answer.status_code != 200:
            raise RuntimeError(f"blob pull {answer.status_code}")
        for block in answer.iter_bytes(MIB):
            hasher.update(block)
    pulled = time.perf_counter()
    if "sha256:" + hasher.hexdigest() != digest:
        raise RuntimeError("pulled blob does not match its digest")
    mib = len(data) / MIB
    return mib / (pushed - started), mib / (pulled - pushed)


def summarise(rates: list[tuple[float, float]]) -> Throughput:
    if not rates:
        return Throughput(None, None, 0)
    pushes = [push for push, _ in rates]
    pulls = [pull for _, pull in rates]
    return Throughput(statistics.median(pushes), statistics.median(pulls), len(rates))


def measure_idle(base_url: str, count: int, size: int) -> Throughput:
    with httpx.Client(base_url=base_url, timeout=120) as client:
        return summarise([transfer(client, os.urandom(size)) for _ in range(count)])


def watch_progress(stream: IO[str], sink: IO[str], ends: dict[str, float]) -> None:
    """Copy gc's stderr to ``sink``, noting when each phase last reported."""
    started = time.perf_counter()
    for line in stream:
        sink.write(line)
        match = PROGRESS.match(line)
        if match:
            ends[match.group(1)] = time.perf_counter() - started


def run_gc_with_traffic(
    data_dir: Path, base_url: str, size: int, max_transfers: int, workdir: Path
) -> GcRun:
    """Run gc; push and pull blobs while it runs (at most ``max_transfers``)."""
    argv = [
        sys.executable, "-m", "dockyard", "gc",
        "--grace", "0", "--keep-untagged", "0", "--data-dir", str(data_dir),
    ]  # fmt: skip
    out_path, err_path = workdir / "gc.out", workdir / "gc.err"
    rates: list[tuple[float, float]] = []
    ends: dict[str, float] = {}
    with out_path.open("wb") as out, err_path.open("w") as err:
        started = time.perf_counter()
        gc = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, text=True)
        assert gc.stderr is not None
        watcher = threading.Thread(target=watch_progress, args=(gc.stderr, err, ends))
        watcher.start()
        with httpx.Client(base_url=base_url, timeout=120) as client:
            for _ in range(max_transfers):
                if gc.poll() is not None:
                    break
                try:
                    rate = transfer(client, os.urandom(size))
                except RuntimeError as exc:
                    # gc (grace 0) may collect the untagged blob before its pull.
                    print(f"  transfer during gc failed: {exc}", flush=True)
                    continue
                if gc.poll() is None:  # count only transfers that ended inside gc
                    rates.append(rate)
        code = gc.wait(timeout=GC_TIMEOUT)
        elapsed = time.perf_counter() - started
        watcher.join(timeout=10)
    stdout = out_path.read_text(errors="replace")
    if code != 0:
        stderr = err_path.read_text(errors="replace")
        raise RuntimeError(f"gc exited {code}: {stderr[-2000:]}")
    lines = stdout.strip().splitlines()
    summary = lines[-1] if lines else ""
    return GcRun(elapsed, summary, summarise(rates), phase_seconds(ends))


def phase_seconds(ends: dict[str, float]) -> dict[str, float]:
    """How long each phase took, from when the previous one last reported."""
    seconds, previous = {}, 0.0
    for phase, end in ends.items():
        seconds[phase], previous = end - previous, end
    return seconds


def cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def report(
    plan: Plan,
    generation: float,
    deleted: int,
    gc: GcRun,
    idle: Throughput,
) -> str:
    match = SUMMARY.search(gc.summary)
    if match:
        counts = [int(group) for group in match.groups()]
        removed = "{} manifests, {} links, {} blobs".format(*counts)
        removed += f" ({sum(counts) / gc.seconds:.0f} items/s)"
    else:
        removed = f"unparsed: {gc.summary!r}"
    phases = ", ".join(f"{name} {took:.1f} s" for name, took in gc.phases.items())
    rate = plan.manifests / generation
    busy = gc.busy
    rows = [
        ("registry", f"{plan.manifests} manifests, {plan.blobs} blobs, "
         f"{plan.repositories} repos"),
        ("generation time", f"{generation:.1f} s ({rate:.0f} manifests/s)"),
        ("manifests deleted by digest", str(deleted)),
        ("gc time", f"{gc.seconds:.1f} s ({phases})"),
        ("gc removed", removed),
        ("push MiB/s idle / during gc", f"{cell(idle.push)} / {cell(busy.push)}"),
        ("pull MiB/s idle / during gc", f"{cell(idle.pull)} / {cell(busy.pull)}"),
        ("transfers idle / during gc", f"{idle.transfers} / {busy.transfers}"),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifests", type=int, default=10000)
    parser.add_argument("--blobs", type=int, default=50000)
    parser.add_argument("--repositories", type=int, default=100)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--transfers", type=int, default=20, help="idle 8 MiB runs")
    parser.add_argument("--blob-mib", type=int, default=8)
    parser.add_argument("--max-gc-transfers", type=int, default=5000)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    plan = Plan(args.manifests, args.blobs, args.repositories, args.threads)
    size = args.blob_mib * MIB
    workdir = Path(tempfile.mkdtemp(prefix="dockyard-gcscale-"))
    data_dir = workdir / "data"
    port = free_port()
    base_url = f"http://{HOST}:{port}"
    server = start_server(data_dir, port, workdir / "server.log")
    try:
        print(f"generating {plan.manifests} manifests / {plan.blobs} blobs ...")
        started = time.perf_counter()
        images = generate(port, plan)
        generation = time.perf_counter() - started
        deleted = delete_half(port, images, plan.threads)
        print(f"generated in {generation:.1f} s; deleted {deleted} manifests")

        idle = measure_idle(base_url, args.transfers, size)
        print(f"idle: push {cell(idle.push)} MiB/s, pull {cell(idle.pull)} MiB/s")
        gc = run_gc_with_traffic(
            data_dir, base_url, size, args.max_gc_transfers, workdir
        )
        print()
        print(report(plan, generation, deleted, gc, idle))
    finally:
        stop_server(server)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
