"""The printed report: the Markdown table, who made the load, the notes."""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from benchlib.measure import Measurement
from benchlib.rows import BIG_TRANSFER, TAGS_LIST, Row
from benchlib.servers import DISTRIBUTION, DOCKYARD
from benchlib.summary import RowResult, Summary

RATIO_NOTE = (
    "ratio: how many times better Dockyard is (Dockyard / Distribution for "
    "rates, Distribution / Dockyard for seconds, CPU and memory; for token auth, "
    "Dockyard's rate with auth / without), the median of the per-run ratios of "
    "samples taken back to back"
)


def number(value: float) -> str:
    """A figure with as many digits as it deserves."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(summary: Summary | None) -> str:
    if summary is None:
        return "-"
    if summary.median is None:
        return "error"
    text = number(summary.median)
    if summary.good < summary.runs:
        text += f" ({summary.good}/{summary.runs})"
    return text


def _met(result: RowResult) -> str:
    met = result.met
    if met is None:
        return "-" if result.row.target.describe("") == "-" else "n/a"
    return "yes" if met else "NO"


def markdown_table(found: Sequence[RowResult]) -> str:
    """The table: workload, both figures, unit, ratio, target, met?"""
    lines = [
        "| workload | Dockyard | Distribution | unit | ratio | target | met? |",
        "|---|---:|---:|---|---:|---|---|",
    ]
    for result in found:
        row = result.row
        ours = _cell(result.dockyard)
        if result.auth_off is not None:
            ours += f" / {number(result.auth_off)}"
        ratio = "n/a" if result.ratio is None else f"{result.ratio:.2f}"
        lines.append(
            f"| {row.label} | {ours} | {_cell(result.reference)} | {row.unit} | "
            f"{ratio} | {row.target.describe(row.unit)} | {_met(result)} |"
        )
    return "\n".join(lines)


def client_table(samples: Sequence[Measurement], rows: Sequence[Row]) -> str:
    """Who made each load and the CPU it and the server used (medians, cores)."""
    cores = os.cpu_count() or 1
    lines = [
        "| workload | client | client cores, Dockyard / Distribution "
        "| server cores, Dockyard / Distribution |",
        "|---|---|---|---|",
    ]
    for row in rows:
        chosen = [s for s in samples if s.row == row.key and "client" in s.details]
        if not chosen:
            continue
        client = str(chosen[0].details["client"])
        lines.append(
            f"| {row.label} | {client} | {_cores(chosen, 'client_cores')} "
            f"| {_cores(chosen, 'server_cores')} |"
        )
    lines.append(f"\n(the machine has {cores} cores)")
    return "\n".join(lines)


def _cores(samples: Sequence[Measurement], key: str) -> str:
    cells = []
    for server in (DOCKYARD, DISTRIBUTION):
        values = [
            float(str(s.details[key]))
            for s in samples
            if s.server == server and key in s.details
        ]
        cells.append(f"{statistics.median(values):.2f}" if values else "-")
    return " / ".join(cells)


def notes(samples: Sequence[Measurement], found: Sequence[RowResult]) -> list[str]:
    """What a reader needs besides the table: errors, quirks, extra figures."""
    lines = [RATIO_NOTE + "."]
    for result in found:
        for summary in (result.dockyard, result.reference):
            if summary is not None and summary.errors:
                shown = "; ".join(summary.errors[:3])
                lines.append(
                    f"{result.row.label}, {summary.server}: "
                    f"{summary.runs - summary.good} failed sample(s): {shown}"
                )
    unordered = {
        s.server
        for s in samples
        if s.row == TAGS_LIST and s.details.get("lexical_order") is False
    }
    for server in sorted(unordered):
        lines.append(f"{server} lists tags in storage order, not lexical order.")
    unsized = {
        s.server
        for s in samples
        if s.row == TAGS_LIST and s.details.get("sizes_checked") is False
    }
    for server in sorted(unsized):
        lines.append(
            f"{server} sends the tag list in chunks, without Content-Length, so "
            "the load could not check each answer's size (httpx checked the whole "
            "list before and after the load)."
        )
    for sample in samples:
        if sample.row == BIG_TRANSFER and sample.value is not None:
            pull = float(str(sample.details.get("pull_mib_s", 0.0)))
            lines.append(
                f"{sample.server}: 1 GiB blob (memory phase) pushed at "
                f"{sample.value:.0f} MiB/s, pulled at {pull:.0f} MiB/s."
            )
        elif sample.row == BIG_TRANSFER:
            lines.append(f"{sample.server}: the 1 GiB transfer failed: {sample.error}")
    return lines


def write_json(
    path: Path,
    meta: dict[str, object],
    samples: Sequence[Measurement],
    found: Sequence[RowResult],
) -> None:
    """Write the run's settings, every sample and the table's figures."""
    document = {
        "meta": meta,
        "rows": [
            {
                "key": r.row.key,
                "label": r.row.label,
                "unit": r.row.unit,
                "dockyard": asdict(r.dockyard) if r.dockyard else None,
                "distribution": asdict(r.reference) if r.reference else None,
                "ratio": r.ratio,
                "pairs": r.pairs,
                "auth_off": r.auth_off,
                "target": r.row.target.describe(r.row.unit),
                "met": r.met,
            }
            for r in found
        ],
        "samples": [asdict(sample) for sample in samples],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
