"""Running a job over items with clients spread over processes."""

from __future__ import annotations

import pytest
from benchlib import BenchError
from benchlib.parallel import Clients, run_parallel
from benchlib.registry import RegistryClient


def _double(client: RegistryClient, item: int) -> int:
    if item < 0:
        raise ValueError(f"negative {item}")
    return item * 2


def test_every_item_runs_once_across_processes() -> None:
    run = run_parallel(_double, list(range(40)), Clients(port=1, count=6, processes=2))

    assert sorted(run.results) == [n * 2 for n in range(40)]
    assert run.errors == []
    assert (run.processes, run.threads) == (2, 6)
    assert run.seconds >= 0


def test_failed_items_are_reported_and_fail_the_check() -> None:
    run = run_parallel(_double, [1, -1, 2], Clients(port=1, count=2))

    assert sorted(run.results) == [2, 4]
    assert run.errors == ["ValueError: negative -1"]
    with pytest.raises(BenchError, match="1 pushes failed"):
        run.check("pushes")


@pytest.mark.parametrize(
    ("count", "processes", "layout"),
    [(16, 2, [8, 8]), (5, 2, [3, 2]), (1, 4, [1]), (3, None, None)],
)
def test_threads_are_spread_over_at_most_one_process_per_client(
    count: int, processes: int | None, layout: list[int] | None
) -> None:
    threads = Clients(1, count, processes=processes).layout()

    assert sum(threads) == count
    if layout is not None:
        assert threads == layout
