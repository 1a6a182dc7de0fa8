"""HTTP Range requests (RFC 9110) for blob downloads, and upload Content-Range."""

from __future__ import annotations

import re

from dockyard.oci import errcodes
from dockyard.oci.errcodes import RegistryError

_SINGLE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range to send, or None to send the whole blob.

    Forms: `500-999`, `500-` and `-500`. A header we do not understand (several
    ranges, other units) is ignored and the whole blob is sent, as RFC 9110
    allows; a well-formed range that lies beyond the content raises
    RANGE_INVALID (416).
    """
    if not header:
        return None
    match = _SINGLE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        length = int(last)
        if length == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(size - length, 0), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> RegistryError:
    return RegistryError(
        errcodes.RANGE_INVALID,
        "requested range not satisfiable",
        headers={"Content-Range": f"bytes */{size}"},
    )


def parse_content_range(header: str | None) -> tuple[int, int] | None:
    """An upload chunk's `Content-Range: <start>-<end>` (inclusive)."""
    if header is None:
        return None
    match = _CONTENT_RANGE.match(header.strip())
    if match is None:
        raise RegistryError(errcodes.RANGE_INVALID, f"invalid Content-Range {header!r}")
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise RegistryError(errcodes.RANGE_INVALID, f"invalid Content-Range {header!r}")
    return start, end
