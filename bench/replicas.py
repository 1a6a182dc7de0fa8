"""Manifest GET by tag: one SQLite Dockyard against two replicas on PostgreSQL.

Run from the repository root with the project's virtualenv, as root (the
throwaway PostgreSQL cluster runs as the `postgres` user):

    .venv/bin/python bench/replicas.py [--runs 3] [--duration 5] [--concurrency 50]

Starts a PostgreSQL cluster (tests/support/postgres.py), two `dockyard serve`
replicas sharing its database and one blob folder, and one SQLite Dockyard, each
with --workers 1. Pushes a small image to each, then loads
`GET /v2/bench/app/manifests/latest` with `hey`. See bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
from benchlib.loadgen import parse_hey

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.support.postgres import PostgresCluster  # noqa: E402 - needs sys.path

HOST = "127.0.0.1"
READY_TIMEOUT = 60.0
REPOSITORY = "bench/app"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass
class Replica:
    """One `dockyard serve` process in its own process group."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def manifest_url(self) -> str:
        return f"{self.url}/v2/{REPOSITORY}/manifests/latest"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.name} exited: {tail}")
            with suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/v2/", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready in time")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def launch(name: str, workdir: Path, env: dict[str, str]) -> Replica:
    data_dir = workdir / f"{name}-data"
    data_dir.mkdir()
    port = free_port()
    argv = [
        sys.executable, "-m", "dockyard", "serve",
        "--host", HOST, "--port", str(port),
        "--data-dir", str(data_dir),
        "--workers", "1", "--log-level", "warning",
    ]  # fmt: skip
    log = workdir / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            cwd=REPO_ROOT,
            start_new_session=True,
        )
    return Replica(name, port, process, log)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(client: httpx.Client, data: bytes) -> dict[str, object]:
    digest = digest_of(data)
    answer = client.post(
        f"/v2/{REPOSITORY}/blobs/uploads/", params={"digest": digest}, content=data
    )
    if answer.status_code != 201:
        raise RuntimeError(f"blob push {answer.status_code}: {answer.text[:200]}")
    return {"digest": digest, "size": len(data)}


def push_image(replica: Replica) -> str:
    """Push config + one 4 KiB layer + manifest tagged latest; check a GET."""
    with httpx.Client(base_url=replica.url, timeout=30) as client:
        config = push_blob(client, b'{"architecture":"amd64","os":"linux"}')
        layer = push_blob(client, os.urandom(4096))
        document = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json"}
            | config,
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar"} | layer],
        }
        body = json.dumps(document).encode()
        answer = client.put(
            f"/v2/{REPOSITORY}/manifests/latest",
            content=body,
            headers={"Content-Type": MANIFEST},
        )
        if answer.status_code != 201:
            raise RuntimeError(f"manifest push {answer.status_code}: {answer.text}")
        got = client.get(replica.manifest_url, headers={"Accept": MANIFEST})
        if got.status_code != 200:
            raise RuntimeError(f"{replica.name}: GET latest {got.status_code}")
        return digest_of(got.content)


def hey(url: str, duration: int, concurrency: int) -> float:
    """One hey run of manifest GETs; returns 200 responses per second."""
    argv = ["hey", "-z", f"{duration}s", "-c", str(concurrency), "-t", "10"]
    argv += ["-H", f"Accept: {MANIFEST}", url]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"hey failed: {done.stderr[-500:]}")
    result = parse_hey(done.stdout)
    if result.failed > result.ok // 100:
        raise RuntimeError(f"hey: {result.failed} failures, {result.statuses}")
    return result.requests_per_second


def parallel_hey(urls: Sequence[str], duration: int, concurrency: int) -> float:
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        rates = pool.map(lambda url: hey(url, duration, concurrency), urls)
        return sum(rates)


def run_scenarios(
    scenarios: dict[str, Callable[[], float]], runs: int
) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in scenarios}
    for run in range(runs):
        for name, measure in scenarios.items():
            time.sleep(1)  # let the previous load's sockets settle
            rate = measure()
            samples[name].append(rate)
            print(f"  run {run + 1} {name}: {rate:.0f} req/s", flush=True)
    return samples


def table(samples: dict[str, list[float]], cores: int) -> str:
    rows = [("scenario", "median req/s", "samples")]
    for name, values in samples.items():
        listed = ", ".join(f"{value:.0f}" for value in values)
        rows.append((name, f"{statistics.median(values):.0f}", listed))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(
            f"{cell:<{width}}" for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in rows
    ]
    lines.append(
        f"note: {cores} cores; the replicas, PostgreSQL and hey all share them, so "
        "'both PG replicas' measures the machine more than the scale-out."
    )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per load")
    parser.add_argument("--concurrency", type=int, default=50)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if shutil.which("hey") is None:
        print("hey is not installed (apt-get install hey)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="dockyard-replicas-"))
    replicas: list[Replica] = []
    cluster = PostgresCluster().start()
    try:
        shared = {
            "DOCKYARD_DATABASE_URL": cluster.create_database("replicas"),
            "DOCKYARD_STORAGE_ROOT": str(workdir / "shared-blobs"),
        }
        # One replica migrates first; the second then finds the schema current.
        for name, env in (("pg1", shared), ("pg2", shared), ("sqlite", {})):
            replicas.append(launch(name, workdir, env))
            replicas[-1].wait_ready()
        pg1, pg2, sqlite = replicas
        digests = {replica.name: push_image(replica) for replica in replicas}
        print(f"pushed bench/app:latest to each: {digests}")

        def load(*targets: Replica) -> Callable[[], float]:
            urls = [target.manifest_url for target in targets]
            return lambda: parallel_hey(urls, args.duration, args.concurrency)

        samples = run_scenarios(
            {
                "SQLite, 1 replica": load(sqlite),
                "PostgreSQL, replica 1 alone": load(pg1),
                "PostgreSQL, replica 2 alone": load(pg2),
                "PostgreSQL, both replicas (sum)": load(pg1, pg2),
            },
            args.runs,
        )
        print()
        print(
            f"manifest GET by tag, hey -z {args.duration}s -c {args.concurrency} "
            "per target, --workers 1 per replica"
        )
        print(table(samples, os.cpu_count() or 0))
    finally:
        for replica in replicas:
            replica.stop()
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
