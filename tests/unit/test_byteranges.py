import pytest

from dockyard.api.byteranges import parse_content_range, parse_range
from dockyard.oci.errcodes import RegistryError


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=500-", (500, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=900-5000", (900, 999)),
        ("bytes=-5000", (0, 999)),
        (None, None),
        ("items=0-1", None),
        ("bytes=0-1,5-6", None),
        ("bytes=9-3", None),
    ],
)
def test_parse_range_forms(
    header: str | None, expected: tuple[int, int] | None
) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=2000-3000", "bytes=-0"])
def test_unsatisfiable_ranges_raise_416(header: str) -> None:
    with pytest.raises(RegistryError) as caught:
        parse_range(header, 1000)
    assert caught.value.status == 416
    assert caught.value.headers["Content-Range"] == "bytes */1000"


def test_content_range_is_inclusive() -> None:
    assert parse_content_range("0-99") == (0, 99)
    assert parse_content_range("bytes 100-199/*") == (100, 199)


@pytest.mark.parametrize("header", ["abc", "5-1", "-1"])
def test_bad_content_range_raises_416(header: str) -> None:
    with pytest.raises(RegistryError) as caught:
        parse_content_range(header)
    assert caught.value.status == 416
