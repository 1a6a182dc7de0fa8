"""The rows of the comparison table: what each measures and its target.

A row's ratio always reads "how many times better Dockyard is": Dockyard over
Distribution for rates, Distribution over Dockyard for times, CPU and memory.
The token-auth row instead compares Dockyard with itself: its rate with
authentication on over its rate with it off.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Compare(Enum):
    """What a row's ratio divides."""

    SERVERS = "servers"
    AUTH = "auth"


@dataclass(frozen=True)
class Target:
    """A row's goal: a minimum ratio, or a ceiling on Dockyard's own value."""

    minimum_ratio: float | None = None
    ceiling: float | None = None

    def describe(self, unit: str) -> str:
        if self.ceiling is not None:
            return f"< {self.ceiling:g} {unit}"
        if self.minimum_ratio is not None:
            return f">= {self.minimum_ratio:.2f}x"
        return "-"

    def met(self, ratio: float | None, dockyard: float | None) -> bool | None:
        """Whether the target is met; None when there is no target or figure."""
        if self.ceiling is not None:
            return None if dockyard is None else dockyard < self.ceiling
        if self.minimum_ratio is not None:
            return None if ratio is None else ratio >= self.minimum_ratio
        return None


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    key: str
    label: str
    unit: str
    higher_is_better: bool
    target: Target
    compare: Compare = Compare.SERVERS

    def ratio(self, dockyard: float, other: float) -> float | None:
        """Dockyard's advantage over ``other`` (the reference, or auth off)."""
        if self.compare is Compare.AUTH or self.higher_is_better:
            return dockyard / other if other else None
        return other / dockyard if dockyard else None


PUSH_MONO = "push-mono"
PUSH_CHUNKED = "push-chunked"
PULL_ONE = "pull-1"
PULL_MANY = "pull-n"
MANIFEST_HEAD = "manifest-head"
MANIFEST_GET = "manifest-get"
MISSING_BLOB_HEAD = "missing-blob-head"
TAGS_LIST = "tags-list"
SMALL_PUSHES = "small-pushes"
SKOPEO_IN = "skopeo-in"
SKOPEO_OUT = "skopeo-out"
CPU_PER_REQUEST = "cpu-per-request"
TOKEN_AUTH = "token-auth"
MEMORY_RSS = "memory-rss"
MEMORY_PSS = "memory-pss"
# Measured, but not a row: the 1 GiB transfer that the memory peaks include.
BIG_TRANSFER = "big-transfer"

MEMORY_CEILING_MIB = 150.0


@dataclass(frozen=True)
class Sizes:
    """The workload sizes that appear in the row labels."""

    blob_mib: int
    chunk_mib: int
    pull_clients: int
    pull_rounds: int
    connections: int
    tags: int
    small_blobs: int
    small_clients: int
    image_mib: int
    layers: int


def table_rows(sizes: Sizes) -> list[Row]:
    """Every row, in the table's order."""
    s = sizes
    at = f"{s.connections} connections"
    speed = Target(minimum_ratio=1.0)
    small = Target(minimum_ratio=3.5)
    memory = Target(ceiling=MEMORY_CEILING_MIB)
    image = f"{s.layers} layers, {s.image_mib} MiB"
    pulls = f"{s.blob_mib} MiB" + (f" x {s.pull_rounds}" if s.pull_rounds > 1 else "")
    return [
        Row(
            PUSH_MONO, f"blob push, monolithic, {s.blob_mib} MiB", "MiB/s", True, speed
        ),
        Row(
            PUSH_CHUNKED,
            f"blob push, chunked ({s.chunk_mib} MiB PATCHes), {s.blob_mib} MiB",
            "MiB/s",
            True,
            speed,
        ),
        Row(PULL_ONE, f"blob pull, 1 client, {pulls}", "MiB/s", True, speed),
        Row(
            PULL_MANY,
            f"blob pull, {s.pull_clients} clients, {pulls} each",
            "MiB/s",
            True,
            speed,
        ),
        Row(MANIFEST_HEAD, f"manifest HEAD by tag, {at}", "req/s", True, small),
        Row(MANIFEST_GET, f"manifest GET by tag, {at}", "req/s", True, small),
        Row(MISSING_BLOB_HEAD, f"HEAD of a missing blob, {at}", "req/s", True, small),
        Row(
            TAGS_LIST,
            f"tags/list of {s.tags:,} tags, {at}",
            "req/s",
            True,
            Target(minimum_ratio=2.0),
        ),
        Row(
            SMALL_PUSHES,
            f"{s.small_blobs} pushes of 4 KiB blobs, {s.small_clients} clients",
            "blobs/s",
            True,
            Target(minimum_ratio=1.5),
        ),
        Row(
            SKOPEO_IN, f"skopeo copy in (oci: to registry), {image}", "s", False, speed
        ),
        Row(
            SKOPEO_OUT,
            f"skopeo copy out (registry to oci:), {image}",
            "s",
            False,
            speed,
        ),
        Row(CPU_PER_REQUEST, "server CPU per manifest HEAD", "us", False, Target()),
        Row(
            TOKEN_AUTH,
            f"token auth: manifest HEAD rate, auth on / off, {at}",
            "req/s",
            True,
            Target(minimum_ratio=0.8),
            Compare.AUTH,
        ),
        Row(
            MEMORY_RSS, "server peak memory, RSS of its processes", "MiB", False, memory
        ),
        Row(
            MEMORY_PSS, "server peak memory, PSS of its processes", "MiB", False, memory
        ),
    ]
