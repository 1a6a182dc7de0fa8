"""Medians per row and server, and each row's ratio from paired samples."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from benchlib.measure import Measurement
from benchlib.rows import Compare, Row
from benchlib.servers import DISTRIBUTION, DOCKYARD


@dataclass(frozen=True)
class Summary:
    """The median of one row on one server, over its good samples."""

    row: str
    server: str
    median: float | None
    good: int
    runs: int
    errors: list[str]


@dataclass(frozen=True)
class RowResult:
    """What the table shows for one row."""

    row: Row
    dockyard: Summary | None
    reference: Summary | None
    ratio: float | None
    pairs: int
    auth_off: float | None = None

    @property
    def met(self) -> bool | None:
        value = self.dockyard.median if self.dockyard else None
        return self.row.target.met(self.ratio, value)


def summarise(samples: Iterable[Measurement], row: str, server: str) -> Summary | None:
    """The median of ``row`` on ``server``, or None if it was not measured."""
    chosen = [s for s in samples if s.row == row and s.server == server]
    if not chosen:
        return None
    values = [s.value for s in chosen if s.value is not None]
    return Summary(
        row=row,
        server=server,
        median=statistics.median(values) if values else None,
        good=len(values),
        runs=len(chosen),
        errors=sorted({s.error for s in chosen if s.error}),
    )


def paired_ratios(samples: Sequence[Measurement], row: Row) -> list[float]:
    """The row's ratio in every run where both sides have a good value.

    Both sides of a pair were measured back to back, so a pair shares the
    machine's mood; the median of the pairs resists drift better than the
    ratio of two medians.
    """
    ours = _by_run(samples, row.key, DOCKYARD)
    if row.compare is Compare.AUTH:
        others = {run: _number(s.details.get("auth_off")) for run, s in ours.items()}
    else:
        others = {
            run: s.value for run, s in _by_run(samples, row.key, DISTRIBUTION).items()
        }
    ratios = []
    for run, sample in sorted(ours.items()):
        other = others.get(run)
        if sample.value is None or other is None:
            continue
        ratio = row.ratio(sample.value, other)
        if ratio is not None:
            ratios.append(ratio)
    return ratios


def results(samples: Sequence[Measurement], rows: Sequence[Row]) -> list[RowResult]:
    """One result per row that has any sample, in the rows' order."""
    found = []
    for row in rows:
        dockyard = summarise(samples, row.key, DOCKYARD)
        reference = summarise(samples, row.key, DISTRIBUTION)
        if dockyard is None and reference is None:
            continue
        ratios = paired_ratios(samples, row)
        off = [
            value
            for s in _by_run(samples, row.key, DOCKYARD).values()
            if (value := _number(s.details.get("auth_off"))) is not None
        ]
        found.append(
            RowResult(
                row=row,
                dockyard=dockyard,
                reference=reference,
                ratio=statistics.median(ratios) if ratios else None,
                pairs=len(ratios),
                auth_off=statistics.median(off) if off else None,
            )
        )
    return found


def _by_run(
    samples: Sequence[Measurement], row: str, server: str
) -> dict[int, Measurement]:
    return {s.run: s for s in samples if s.row == row and s.server == server}


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
