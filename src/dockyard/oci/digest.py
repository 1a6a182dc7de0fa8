"""Content digests: parsing, validation and streaming computation."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from dockyard.oci import errcodes
from dockyard.oci.errcodes import RegistryError

# The algorithms the registry verifies, with the length of their hex encoding.
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
DEFAULT_ALGORITHM = "sha256"

_DIGEST_GRAMMAR = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_HEX = re.compile(r"^[a-f0-9]+$")


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse a digest, raising DIGEST_INVALID or UNSUPPORTED as the spec asks."""
        if not _DIGEST_GRAMMAR.match(text):
            raise RegistryError(errcodes.DIGEST_INVALID, f"invalid digest {text!r}")
        algorithm, _, encoded = text.partition(":")
        length = ALGORITHMS.get(algorithm)
        if length is None:
            raise RegistryError(
                errcodes.UNSUPPORTED_DIGEST,
                f"digest algorithm {algorithm!r} is not supported",
            )
        if len(encoded) != length or not _HEX.match(encoded):
            raise RegistryError(
                errcodes.DIGEST_INVALID, f"invalid {algorithm} digest {text!r}"
            )
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = DEFAULT_ALGORITHM) -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())


def check_algorithm(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise RegistryError(
            errcodes.UNSUPPORTED_DIGEST,
            f"digest algorithm {algorithm!r} is not supported",
        )
    return algorithm


def is_digest(reference: str) -> bool:
    """Tell a digest reference from a tag: tags never contain a colon."""
    return ":" in reference
