"""Repository name and tag grammar from the distribution spec."""

from __future__ import annotations

import re

from dockyard.oci import errcodes
from dockyard.oci.errcodes import RegistryError

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_PATTERN = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_PATTERN = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")

# Host plus name must stay under 256 characters; we keep a margin for the host.
MAX_NAME_LENGTH = 255


def validate_name(name: str) -> str:
    if len(name) > MAX_NAME_LENGTH or not NAME_PATTERN.match(name):
        raise RegistryError(
            errcodes.NAME_INVALID, f"invalid repository name {name!r}", detail=name
        )
    return name


def validate_tag(tag: str) -> str:
    if not TAG_PATTERN.match(tag):
        raise RegistryError(errcodes.TAG_INVALID, f"invalid tag {tag!r}", detail=tag)
    return tag
