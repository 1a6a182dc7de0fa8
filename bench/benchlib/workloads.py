"""The measured workloads: blob push, blob pull, manifest HEAD, peak memory.

The manifest HEAD also runs against a Dockyard with authentication on, each
request carrying a bearer token, to show what authentication costs.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from benchlib import BenchError
from benchlib.blobs import MIB, BlobFile
from benchlib.loadgen import LoadResult, LoadSpec, run_load
from benchlib.procstat import (
    MemoryPeak,
    MemorySampler,
    cpu_counters,
    cpu_share,
    tree_cpu_seconds,
    tree_memory,
    wait_for_quiet,
)
from benchlib.registry import MANIFEST_ACCEPT, RegistryClient
from benchlib.servers import RunningServer

PUSH = "blob push"
PULL = "blob pull"
HEAD = "manifest HEAD by tag"
AUTH_HEAD = "manifest HEAD by tag, token auth"
MEMORY_PUSH = "peak RSS, 1 GiB push"
MEMORY_PULL = "peak RSS, 1 GiB pull"

BLOB_REPO = "bench/blobs"
MEMORY_REPO = "bench/memory"
IMAGE_REPO = "bench/app"
IMAGE_TAG = "latest"
MAX_FAILED_SHARE = 0.01
TOKEN_SERVICE = "dockyard"
PULL_SCOPE = f"repository:{IMAGE_REPO}:pull"
# Seconds a token must still be valid after the longest sample could end.
TOKEN_MARGIN = 30.0

FAILURES = (BenchError, OSError, http.client.HTTPException, subprocess.SubprocessError)
T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """How the workloads run; filled from the command line."""

    concurrency: int
    duration: float
    warmup: float
    loadgen: str
    quiet_threshold: float
    quiet_wait: float


@dataclass
class Measurement:
    """One sample of one workload on one server; ``value`` is None on error."""

    server: str
    workload: str
    run: int
    unit: str
    value: float | None = None
    seconds: float = 0.0
    busy_before: float = 0.0
    steal: float = 0.0
    error: str | None = None
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Timing:
    """Wall time of an action and the machine's state around it."""

    seconds: float
    busy_before: float
    steal: float


def timed(action: Callable[[], T], settings: Settings) -> tuple[T, Timing]:
    """Flush dirty pages, wait for a quiet machine, then time ``action``."""
    os.sync()
    busy = wait_for_quiet(settings.quiet_threshold, settings.quiet_wait)
    before = cpu_counters()
    start = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - start
    share = cpu_share(before, cpu_counters())
    return result, Timing(seconds=seconds, busy_before=busy, steal=share.steal)


def _fill(measurement: Measurement, value: float, timing: Timing) -> Measurement:
    measurement.value = value
    measurement.seconds = timing.seconds
    measurement.busy_before = timing.busy_before
    measurement.steal = timing.steal
    return measurement


def guarded(
    measurement: Measurement, action: Callable[[Measurement], Measurement]
) -> Measurement:
    """Run a workload, turning a failure into an error on its measurement."""
    try:
        return action(measurement)
    except FAILURES as error:
        measurement.value = None
        measurement.error = f"{type(error).__name__}: {error}"
        return measurement


def measure_push(
    server: RunningServer, blob: BlobFile, run: int, settings: Settings
) -> Measurement:
    """Throughput of one monolithic upload (POST, then PUT with the body)."""

    def action(sample: Measurement) -> Measurement:
        client = server.client
        _, timing = timed(lambda: client.push_blob_file(BLOB_REPO, blob), settings)
        return _fill(sample, blob.size / MIB / timing.seconds, timing)

    return guarded(Measurement(server.name, PUSH, run, "MiB/s"), action)


def measure_pull(
    server: RunningServer, blob: BlobFile, run: int, settings: Settings
) -> Measurement:
    """Throughput of one blob download, verified against the blob's digest."""

    def action(sample: Measurement) -> Measurement:
        client = server.client
        pulled, timing = timed(
            lambda: client.pull_blob(BLOB_REPO, blob.digest), settings
        )
        _check_pulled(pulled.size, pulled.digest, blob)
        return _fill(sample, blob.size / MIB / timing.seconds, timing)

    return guarded(Measurement(server.name, PULL, run, "MiB/s"), action)


def _check_pulled(size: int, digest: str, blob: BlobFile) -> None:
    if size != blob.size or digest != blob.digest:
        raise BenchError(
            f"pulled {size} bytes with {digest}, expected {blob.size} "
            f"bytes with {blob.digest}"
        )


def prepare_image(server: RunningServer) -> str:
    """Push the small image whose tag the HEAD workload asks for."""
    return server.client.push_small_image(IMAGE_REPO, IMAGE_TAG, os.urandom(4096))


def measure_head(
    server: RunningServer, manifest_digest: str, run: int, settings: Settings
) -> Measurement:
    """Requests per second of HEAD on a manifest tag under concurrent load."""

    def action(sample: Measurement) -> Measurement:
        _check_head(server.client, manifest_digest)
        return _head_load(sample, server, {"Accept": MANIFEST_ACCEPT}, settings)

    return guarded(Measurement(server.name, HEAD, run, "req/s"), action)


def measure_auth_head(
    server: RunningServer,
    manifest_digest: str,
    run: int,
    settings: Settings,
    label: str,
) -> Measurement:
    """The HEAD load of ``measure_head``, every request with a bearer token.

    ``server`` runs with authentication on. A fresh pull token is fetched for
    each sample; the sample is recorded under ``label``, the table's column.
    """

    def action(sample: Measurement) -> Measurement:
        bearer = f"Bearer {_fresh_token(server, settings)}"
        _check_auth_head(server.port, bearer, manifest_digest)
        headers = {"Accept": MANIFEST_ACCEPT, "Authorization": bearer}
        return _head_load(sample, server, headers, settings)

    return guarded(Measurement(label, AUTH_HEAD, run, "req/s"), action)


def _fresh_token(server: RunningServer, settings: Settings) -> str:
    token = server.client.fetch_token(TOKEN_SERVICE, PULL_SCOPE)
    needed = settings.warmup + settings.quiet_wait + settings.duration
    if needed + TOKEN_MARGIN > token.expires_in:
        raise BenchError(
            f"the token lives {token.expires_in:.0f} s, a sample may take "
            f"{needed:.0f} s: shorten --duration, --warmup or --quiet-wait"
        )
    return token.value


def _check_auth_head(port: int, bearer: str, manifest_digest: str) -> None:
    # Without the token the server must refuse, or the load would not measure
    # the authenticated path.
    status, _ = RegistryClient(port).head_manifest(IMAGE_REPO, IMAGE_TAG)
    if status != 401:
        raise BenchError(f"manifest HEAD without a token gave {status}, not 401")
    _check_head(RegistryClient(port, authorization=bearer), manifest_digest)


def _head_load(
    sample: Measurement,
    server: RunningServer,
    headers: dict[str, str],
    settings: Settings,
) -> Measurement:
    """Warm up, then time ``--duration`` seconds of HEAD on the image's tag."""
    url = f"{server.client.base_url()}/v2/{IMAGE_REPO}/manifests/{IMAGE_TAG}"
    if settings.warmup > 0:
        warmup = LoadSpec(url, headers, settings.concurrency, settings.warmup)
        run_load(warmup, settings.loadgen)
    spec = LoadSpec(url, headers, settings.concurrency, settings.duration)
    cpu_before = tree_cpu_seconds(server.pid)
    load, timing = timed(lambda: run_load(spec, settings.loadgen), settings)
    server_cpu = tree_cpu_seconds(server.pid) - cpu_before
    sample.details = _load_details(load, server_cpu)
    _check_load(load)
    return _fill(sample, load.requests_per_second, timing)


def _check_head(client: RegistryClient, manifest_digest: str) -> None:
    status, digest = client.head_manifest(IMAGE_REPO, IMAGE_TAG)
    if status != 200 or digest != manifest_digest:
        raise BenchError(f"manifest HEAD gave {status} with digest {digest!r}")


def _load_details(load: LoadResult, server_cpu: float) -> dict[str, object]:
    cores = os.cpu_count() or 1
    seconds = max(load.seconds, 1e-9)
    return {
        "tool": load.tool,
        "load_seconds": load.seconds,
        "ok": load.ok,
        "failed": load.failed,
        "statuses": load.statuses,
        "generator_cpu_seconds": load.generator_cpu_seconds,
        "generator_cores": load.generator_cpu_seconds / seconds,
        "generator_machine_share": load.generator_cpu_seconds / seconds / cores,
        "server_cpu_seconds": server_cpu,
        "server_cores": server_cpu / seconds,
    }


def _check_load(load: LoadResult) -> None:
    attempted = load.ok + load.failed
    if load.ok == 0 or load.failed > MAX_FAILED_SHARE * attempted:
        raise BenchError(
            f"{load.failed} of {attempted} HEAD requests failed "
            f"(statuses {load.statuses})"
        )


def measure_memory(
    server: RunningServer, blob: BlobFile, run: int, settings: Settings
) -> list[Measurement]:
    """Peak RSS of the server's process tree while it takes and serves ``blob``."""
    idle = tree_memory(server.pid)
    push = Measurement(server.name, MEMORY_PUSH, run, "MiB")
    pull = Measurement(server.name, MEMORY_PULL, run, "MiB")

    def pushing(sample: Measurement) -> Measurement:
        with MemorySampler(server.pid) as sampler:
            _, timing = timed(
                lambda: server.client.push_blob_file(MEMORY_REPO, blob), settings
            )
        return _memory_result(sample, sampler.peak, timing, blob, idle.rss)

    def pulling(sample: Measurement) -> Measurement:
        with MemorySampler(server.pid) as sampler:
            pulled, timing = timed(
                lambda: server.client.pull_blob(MEMORY_REPO, blob.digest), settings
            )
        _check_pulled(pulled.size, pulled.digest, blob)
        return _memory_result(sample, sampler.peak, timing, blob, idle.rss)

    guarded(push, pushing)
    if push.error is None:
        guarded(pull, pulling)
    else:
        pull.error = "skipped: the 1 GiB push failed"
    return [push, pull]


def _memory_result(
    sample: Measurement, peak: MemoryPeak, timing: Timing, blob: BlobFile, idle: int
) -> Measurement:
    sample.details = {
        "idle_rss_mib": idle / MIB,
        "peak_pss_mib": peak.pss / MIB,
        "processes": peak.processes,
        "samples": peak.samples,
        "throughput_mib_s": blob.size / MIB / timing.seconds,
    }
    return _fill(sample, peak.rss / MIB, timing)
