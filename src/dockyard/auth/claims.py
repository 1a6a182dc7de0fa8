"""What a verified registry token says, and the error for one that cannot be trusted.

Kept apart from `tokens`, which signs and verifies them, so that request
handling can name these types without loading the JWT and cryptography
libraries in a registry that runs without authentication.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dockyard.auth.identity import Identity


class InvalidToken(Exception):
    """The token cannot be trusted; the message says why (for the audit log)."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    identity: Identity
    access: tuple[dict[str, Any], ...]
    expires_at: float
    is_refresh: bool

    def actions_on(self, resource_type: str, name: str) -> frozenset[str]:
        granted: set[str] = set()
        for entry in self.access:
            if entry.get("type") == resource_type and entry.get("name") == name:
                granted.update(entry.get("actions", ()))
        return frozenset(granted)
