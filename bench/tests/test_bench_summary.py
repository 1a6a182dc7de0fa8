"""Ratios from paired samples, targets, and the Markdown table."""

from __future__ import annotations

import pytest
from benchlib.measure import Measurement
from benchlib.report import markdown_table, number
from benchlib.rows import (
    MEMORY_RSS,
    PUSH_MONO,
    SKOPEO_IN,
    TOKEN_AUTH,
    Sizes,
    table_rows,
)
from benchlib.servers import DISTRIBUTION, DOCKYARD
from benchlib.summary import RowResult, results

SIZES = Sizes(
    blob_mib=256,
    chunk_mib=8,
    pull_clients=8,
    pull_rounds=4,
    connections=64,
    tags=1000,
    small_blobs=500,
    small_clients=16,
    image_mib=100,
    layers=5,
)
ROWS = {row.key: row for row in table_rows(SIZES)}


def _result(samples: list[Measurement], key: str) -> RowResult:
    (found,) = results(samples, [ROWS[key]])
    return found


def test_rate_ratio_is_the_median_of_per_run_ratios() -> None:
    samples = [
        Measurement(DOCKYARD, PUSH_MONO, 1, 200.0),
        Measurement(DISTRIBUTION, PUSH_MONO, 1, 100.0),
        Measurement(DOCKYARD, PUSH_MONO, 2, 90.0),
        Measurement(DISTRIBUTION, PUSH_MONO, 2, 100.0),
        Measurement(DOCKYARD, PUSH_MONO, 3, 150.0),
        Measurement(DISTRIBUTION, PUSH_MONO, 3, 100.0),
    ]

    found = _result(samples, PUSH_MONO)

    assert found.ratio == pytest.approx(1.5)
    assert found.pairs == 3
    assert found.met is True


def test_time_ratio_is_inverted_so_above_one_means_faster() -> None:
    samples = [
        Measurement(DOCKYARD, SKOPEO_IN, 1, 2.0),
        Measurement(DISTRIBUTION, SKOPEO_IN, 1, 3.0),
    ]

    assert _result(samples, SKOPEO_IN).ratio == pytest.approx(1.5)


def test_a_run_with_a_failed_side_gives_no_ratio() -> None:
    samples = [
        Measurement(DOCKYARD, PUSH_MONO, 1, 200.0),
        Measurement(DISTRIBUTION, PUSH_MONO, 1, error="broken"),
    ]

    found = _result(samples, PUSH_MONO)

    assert found.ratio is None
    assert found.met is None
    assert found.reference is not None and found.reference.errors == ["broken"]


def test_token_auth_compares_dockyard_with_itself() -> None:
    sample = Measurement(DOCKYARD, TOKEN_AUTH, 1, 850.0)
    sample.details["auth_off"] = 1000.0

    found = _result([sample], TOKEN_AUTH)

    assert found.ratio == pytest.approx(0.85)
    assert found.auth_off == pytest.approx(1000.0)
    assert found.met is True


def test_memory_target_is_a_ceiling_on_dockyard_alone() -> None:
    samples = [
        Measurement(DOCKYARD, MEMORY_RSS, 0, 160.0),
        Measurement(DISTRIBUTION, MEMORY_RSS, 0, 40.0),
    ]

    found = _result(samples, MEMORY_RSS)

    assert found.met is False
    assert found.ratio == pytest.approx(0.25)


def test_table_marks_partial_and_failed_cells() -> None:
    samples = [
        Measurement(DOCKYARD, PUSH_MONO, 1, 200.0),
        Measurement(DOCKYARD, PUSH_MONO, 2, error="boom"),
        Measurement(DISTRIBUTION, PUSH_MONO, 1, error="boom"),
        Measurement(DISTRIBUTION, PUSH_MONO, 2, error="boom"),
    ]

    table = markdown_table(results(samples, list(ROWS.values())))

    lines = table.splitlines()
    assert len(lines) == 3
    assert "| 200 (1/2) | error | MiB/s | n/a | >= 1.00x | n/a |" in lines[2]


@pytest.mark.parametrize(
    ("value", "shown"),
    [(12345.6, "12,346"), (123.4, "123"), (12.34, "12.3"), (1.234, "1.23")],
)
def test_numbers_get_the_digits_they_deserve(value: float, shown: str) -> None:
    assert number(value) == shown
