"""Walk a paged listing (tags/list or _catalog) by its Link headers, timing
every page, and check it lists exactly what is expected."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from benchlib import BenchError
from benchlib.registry import Page

# Pages beyond what the expected count needs mean the server loops.
SPARE_PAGES = 10


@dataclass
class Walk:
    """Every name a walk saw, and how long each page took."""

    names: list[str] = field(default_factory=list)
    page_seconds: list[float] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return len(self.page_seconds)

    def window_ms(self, where: str, width: int) -> float:
        """Median milliseconds per page of ``width`` pages at the start,
        ``middle`` or ``end`` of the walk (narrower when the walk is short)."""
        count = len(self.page_seconds)
        width = max(1, min(width, count // 5))
        if where == "start":
            start = 0
        elif where == "middle":
            start = max(0, (count - width) // 2)
        else:
            start = max(0, count - width)
        return statistics.median(self.page_seconds[start : start + width]) * 1000


def walk(fetch: Callable[[str | None], Page], expected: int, per_page: int) -> Walk:
    """Fetch the first page (``fetch(None)``), then follow ``next`` links."""
    limit = expected // max(per_page, 1) + SPARE_PAGES
    seen = Walk()
    url: str | None = None
    while True:
        start = time.perf_counter()
        page = fetch(url)
        seen.page_seconds.append(time.perf_counter() - start)
        seen.names.extend(page.names)
        if page.next_url is None:
            return seen
        if seen.pages >= limit:
            raise BenchError(f"still a next page after {seen.pages} pages")
        url = page.next_url


def check_listing(seen: Walk, expected: Sequence[str], what: str) -> bool:
    """Every expected name exactly once; returns whether in lexical order."""
    if sorted(seen.names) != sorted(expected):
        missing = len(set(expected) - set(seen.names))
        extra = len(seen.names) - len(expected) + missing
        raise BenchError(
            f"{what}: {missing} names missing, {extra} extra or repeated "
            f"in {seen.pages} pages"
        )
    return seen.names == sorted(expected)


def typical(walks: Sequence[Walk]) -> Walk:
    """One walk whose every page takes the median time of that page's walks.

    On a shared machine a single page can take several times its usual time;
    the median over repeated walks shows how cost follows position.
    """
    pages = min(walk.pages for walk in walks)
    return Walk(
        names=walks[0].names,
        page_seconds=[
            statistics.median(walk.page_seconds[index] for walk in walks)
            for index in range(pages)
        ],
    )
