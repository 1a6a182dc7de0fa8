"""Walking paged listings by their Link headers."""

from __future__ import annotations

import pytest
from benchlib import BenchError
from benchlib.listing import Walk, check_listing, typical, walk
from benchlib.registry import Page, next_link, with_digest

NAMES = [f"t{n:03d}" for n in range(25)]


def _pages(names: list[str], size: int) -> dict[str | None, Page]:
    pages: dict[str | None, Page] = {}
    for index, start in enumerate(range(0, len(names), size)):
        following = f"/page/{index + 1}" if start + size < len(names) else None
        key = None if index == 0 else f"/page/{index}"
        pages[key] = Page(names[start : start + size], following, 0)
    return pages


def test_walk_follows_next_links_to_the_end() -> None:
    pages = _pages(NAMES, 10)

    seen = walk(pages.__getitem__, len(NAMES), 10)

    assert seen.names == NAMES
    assert seen.pages == 3
    assert check_listing(seen, NAMES, "tags") is True


def test_walk_stops_a_server_that_never_ends() -> None:
    def endless(url: str | None) -> Page:
        return Page(["a"], "/again", 0)

    with pytest.raises(BenchError, match="next page"):
        walk(endless, 5, 10)


def test_check_listing_accepts_any_order_but_says_so() -> None:
    seen = Walk(names=list(reversed(NAMES)), page_seconds=[0.1])

    assert check_listing(seen, NAMES, "tags") is False


def test_check_listing_rejects_missing_and_repeated_names() -> None:
    seen = Walk(names=NAMES[:-1] + NAMES[:1], page_seconds=[0.1])

    with pytest.raises(BenchError, match="1 names missing"):
        check_listing(seen, NAMES, "tags")


def test_windows_take_the_median_at_start_middle_and_end() -> None:
    seen = Walk(page_seconds=[0.001] * 10 + [0.005] * 10 + [0.009] * 10)

    assert seen.window_ms("start", 10) == pytest.approx(1.0)
    assert seen.window_ms("middle", 10) == pytest.approx(5.0)
    assert seen.window_ms("end", 10) == pytest.approx(9.0)


@pytest.mark.parametrize(
    ("header", "target"),
    [
        ('</v2/a/tags/list?n=2&last=b>; rel="next"', "/v2/a/tags/list?n=2&last=b"),
        (
            "<http://h/v2/_catalog?n=1&last=x>; rel=next",
            "http://h/v2/_catalog?n=1&last=x",
        ),
        ('</first>; rel="prev", </second>; rel="next"', "/second"),
        ('</only>; rel="prev"', None),
        (None, None),
    ],
)
def test_next_link_finds_the_next_page(header: str | None, target: str | None) -> None:
    assert next_link(header) == target


def test_with_digest_keeps_the_upload_state_in_the_query() -> None:
    assert (
        with_digest("/u/1?_state=abc", "sha256:0") == "/u/1?_state=abc&digest=sha256:0"
    )
    assert with_digest("/u/1", "sha256:0") == "/u/1?digest=sha256:0"


def test_typical_walk_takes_each_page_median_over_walks() -> None:
    walks = [
        Walk(names=["a", "b"], page_seconds=[0.001, 0.050]),
        Walk(names=["a", "b"], page_seconds=[0.900, 0.002]),
        Walk(names=["a", "b"], page_seconds=[0.003, 0.004]),
    ]

    seen = typical(walks)

    assert seen.page_seconds == [0.003, 0.004]
    assert seen.names == ["a", "b"]
