"""Summarise measurements: medians, ratios, the printed table, the JSON file."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from benchlib.workloads import (
    AUTH_HEAD,
    HEAD,
    MEMORY_PULL,
    MEMORY_PUSH,
    PULL,
    PUSH,
    Measurement,
)

SUBJECT = "Dockyard"
REFERENCE = "Distribution"
HIGHER_IS_BETTER = {PUSH: True, PULL: True, HEAD: True, AUTH_HEAD: True}
WORKLOAD_ORDER = [PUSH, PULL, HEAD, AUTH_HEAD, MEMORY_PUSH, MEMORY_PULL]


@dataclass(frozen=True)
class Summary:
    """The median of one workload on one server, over its good samples."""

    workload: str
    server: str
    unit: str
    median: float | None
    good: int
    runs: int
    errors: list[str]


def summarise(measurements: Iterable[Measurement]) -> list[Summary]:
    """One summary per workload and server, in the table's order."""
    groups: dict[tuple[str, str], list[Measurement]] = {}
    for sample in measurements:
        groups.setdefault((sample.workload, sample.server), []).append(sample)

    summaries = []
    for (workload, server), samples in groups.items():
        values = [s.value for s in samples if s.value is not None]
        summaries.append(
            Summary(
                workload=workload,
                server=server,
                unit=samples[0].unit,
                median=statistics.median(values) if values else None,
                good=len(values),
                runs=len(samples),
                errors=sorted({s.error for s in samples if s.error}),
            )
        )
    return sorted(summaries, key=_order)


def _order(summary: Summary) -> tuple[int, str]:
    return WORKLOAD_ORDER.index(summary.workload), summary.server


def ratio(subject: Summary | None, reference: Summary | None) -> float | None:
    """Dockyard's median over Distribution's, when both exist."""
    if subject is None or reference is None:
        return None
    if subject.median is None or not reference.median:
        return None
    return subject.median / reference.median


def auth_cost(summaries: Sequence[Summary]) -> float | None:
    """Dockyard's HEAD req/s with token auth over without, from the medians."""
    return ratio(_find(summaries, AUTH_HEAD, SUBJECT), _find(summaries, HEAD, SUBJECT))


def _find(summaries: Sequence[Summary], workload: str, server: str) -> Summary | None:
    for summary in summaries:
        if summary.workload == workload and summary.server == server:
            return summary
    return None


def _cell(summary: Summary | None) -> str:
    if summary is None:
        return "-"
    if summary.median is None:
        return "error"
    text = f"{summary.median:,.1f}"
    if summary.good < summary.runs:
        text += f" ({summary.good}/{summary.runs})"
    return text


def table(summaries: Sequence[Summary]) -> str:
    """The medians side by side, with the ratio and which way is better."""
    header = ("workload", "unit", SUBJECT, REFERENCE, "ratio D/Dist", "better")
    rows = [header]
    for workload in WORKLOAD_ORDER:
        subject = _find(summaries, workload, SUBJECT)
        reference = _find(summaries, workload, REFERENCE)
        present = subject or reference
        if present is None:
            continue
        value = ratio(subject, reference)
        better = "higher" if HIGHER_IS_BETTER.get(workload, False) else "lower"
        rows.append(
            (
                workload,
                present.unit,
                _cell(subject),
                _cell(reference),
                "n/a" if value is None else f"{value:.2f}",
                better,
            )
        )
    return _format_rows(rows)


def _format_rows(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.ljust(width) if index < 2 else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def write_json(path: Path, meta: dict[str, object], samples: list[Measurement]) -> None:
    """Write the run's settings, every sample and the medians to ``path``."""
    summaries = summarise(samples)
    ratios = {
        workload: ratio(
            _find(summaries, workload, SUBJECT), _find(summaries, workload, REFERENCE)
        )
        for workload in WORKLOAD_ORDER
    }
    document = {
        "meta": meta,
        "summaries": [asdict(summary) for summary in summaries],
        "ratios_dockyard_over_distribution": ratios,
        "token_auth_cost": auth_cost(summaries),
        "samples": [asdict(sample) for sample in samples],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
