"""Password and secret hashing (bcrypt), and htpasswd import."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path

import bcrypt

# bcrypt reads at most 72 bytes; longer secrets are pre-hashed so that every
# byte counts (robot secrets are long).
_BCRYPT_LIMIT = 72
ROUNDS = 12


def _prepare(secret: str) -> bytes:
    raw = secret.encode()
    if len(raw) > _BCRYPT_LIMIT:
        raw = hashlib.sha256(raw).hexdigest().encode()
    return raw


def hash_password(secret: str, rounds: int = ROUNDS) -> str:
    return bcrypt.hashpw(_prepare(secret), bcrypt.gensalt(rounds)).decode()


def verify_password(secret: str, hashed: str) -> bool:
    """Check a secret against a bcrypt hash ($2a$, $2b$ or htpasswd's $2y$)."""
    if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
        return False
    normalized = "$2b$" + hashed[4:]
    try:
        return bcrypt.checkpw(_prepare(secret), normalized.encode())
    except ValueError:
        return False


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class HtpasswdError(ValueError):
    """A line of an htpasswd file that cannot be imported."""


def read_htpasswd(path: Path) -> Iterator[tuple[str, str]]:
    """(username, bcrypt hash) pairs; other hash schemes are refused by line."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        username, sep, hashed = line.partition(":")
        if not sep or not username:
            raise HtpasswdError(f"{path}:{number}: expected user:hash")
        if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise HtpasswdError(
                f"{path}:{number}: {username}: only bcrypt hashes can be imported"
            )
        yield username, hashed
