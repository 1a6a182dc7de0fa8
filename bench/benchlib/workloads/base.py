"""What every workload shares: settings, per-run files, the workload interface."""

from __future__ import annotations

import shutil
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

from benchlib.blobs import MIB, BlobFile, make_blob_file
from benchlib.measure import Measurement, Quiet, Timing, timed
from benchlib.parallel import Clients, Job, ParallelRun, run_parallel
from benchlib.procstat import tree_cpu_seconds
from benchlib.rows import Sizes
from benchlib.servers import RunningServer

REPO_ROOT = Path(__file__).resolve().parents[3]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.oci_layout import Image, write_image  # noqa: E402 - sys.path

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Settings:
    """How the workloads run; filled from the command line."""

    sizes: Sizes
    duration: float
    warmup: float
    loadgen: str
    cpu_requests: int
    quiet: Quiet
    workdir: Path


class RunFiles:
    """The blobs and the image layout of one run, made on first use.

    Every run gets new bytes, so no server can answer from an earlier run's
    copy; both servers get the same bytes within a run.
    """

    def __init__(self, run: int, settings: Settings) -> None:
        self.run = run
        self.sizes = settings.sizes
        self.folder = settings.workdir / f"run-{run}"
        self.folder.mkdir()
        self._blobs: dict[str, BlobFile] = {}
        self._image: Image | None = None

    def blob(self, name: str, mib: int | None = None) -> BlobFile:
        """The run's blob called ``name``, ``--blob-mib`` unless ``mib``."""
        if name not in self._blobs:
            size = (mib or self.sizes.blob_mib) * MIB
            tag = self.run * 1000 + len(self._blobs)
            path = self.folder / f"{name}.bin"
            self._blobs[name] = make_blob_file(path, size, tag)
        return self._blobs[name]

    def image(self) -> tuple[Path, Image]:
        """An OCI image layout with the run's multi-layer image, tag ``latest``."""
        root = self.folder / "image"
        if self._image is None:
            layer_bytes = self.sizes.image_mib * MIB // self.sizes.layers
            self._image = write_image(
                root,
                "latest",
                seed=self.run,
                layer_count=self.sizes.layers,
                layer_bytes=layer_bytes,
            )
        return root, self._image

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class Workload(ABC):
    """A group of table rows measured together, selected by ``name``.

    ``prepare`` runs once per server before the first run and is not timed;
    ``measure`` runs once per run and server and returns one sample per row.
    """

    name: ClassVar[str]
    rows: ClassVar[tuple[str, ...]]
    first_run_only: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def prepare(self, server: RunningServer) -> None:
        """Set up what the measurements need on ``server``: nothing by default."""
        return None

    @abstractmethod
    def measure(self, server: RunningServer, files: RunFiles) -> list[Measurement]:
        """Take this run's samples on ``server``."""


@dataclass(frozen=True)
class ServerTiming:
    """A timing, and the CPU the server's processes used meanwhile."""

    timing: Timing
    server_cpu_seconds: float

    @property
    def server_cores(self) -> float:
        return self.server_cpu_seconds / max(self.timing.seconds, 1e-9)


def timed_on(
    server: RunningServer,
    action: Callable[[], T],
    quiet: Quiet,
    warmup: Callable[[], object] | None = None,
) -> tuple[T, ServerTiming]:
    """``timed``, also counting the CPU time of the server's process tree."""
    used: list[float] = []

    def counted() -> T:
        before = tree_cpu_seconds(server.pid)
        result = action()
        used.append(tree_cpu_seconds(server.pid) - before)
        return result

    result, timing = timed(counted, quiet, warmup)
    return result, ServerTiming(timing, used[0])


def run_clients(
    sample: Measurement,
    server: RunningServer,
    job: Job[T, R],
    items: Sequence[T],
    clients: int,
    quiet: Quiet,
    kind: str = "httpx",
) -> ParallelRun[R]:
    """Time ``job`` over ``items`` with ``clients`` clients (``kind`` names them).

    Fails if any item failed. Fills the sample's timing and details (who the
    clients were, the CPU they and the server used, in cores); the caller
    sets its value from the run's time, which excludes client start-up.
    """
    where = Clients(server.port, clients, server.authorization)
    run, cost = timed_on(server, lambda: run_parallel(job, items, where), quiet)
    run.check("client requests")
    seconds = max(run.seconds, 1e-9)
    sample.seconds = run.seconds
    sample.busy_before = cost.timing.busy_before
    sample.steal = cost.timing.steal
    sample.details = {
        "client": f"{kind}, {_count(run.threads, 'thread')} in "
        f"{_count(run.processes, 'process')}",
        "client_cores": run.client_cpu_seconds / seconds,
        "server_cores": cost.server_cpu_seconds / seconds,
    }
    return run


def _count(number: int, noun: str) -> str:
    plural = noun + ("es" if noun.endswith("s") else "s")
    return f"{number} {noun if number == 1 else plural}"
