"""Token signing keys: generated on first start, rotated on demand.

    <keys_dir>/
      <kid>.pem      one EC P-256 private key per file; the newest signs,
                     every one present still verifies (so rotation is smooth)

The key id is the RFC 7638 thumbprint of the public key, which is what newer
Distribution releases expect when they verify tokens issued elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

logger = logging.getLogger(__name__)

# How often the folder is looked at for keys rotated or retired by another
# process (`dockyard keys ...`): one stat call, and a re-read when it changed.
CHECK_INTERVAL = 1.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def thumbprint(key: ec.EllipticCurvePublicKey) -> str:
    numbers = key.public_numbers()
    jwk = {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    return _b64(hashlib.sha256(canonical).digest())


class SigningKeys:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self._current: str | None = None
        self._checked_at = 0.0
        self._folder_mtime = 0
        # Changes whenever the set of keys does; caches of verified tokens
        # compare it to forget tokens signed by a retired key.
        self.revision = 0

    def load(self, *, create: bool = True) -> None:
        """Read every key in the folder, generating the first one if asked."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._scan()
        if not self._keys and create:
            self.rotate()

    def refresh(self) -> None:
        """Re-read the folder if it changed (checked at most once a second)."""
        now = time.monotonic()
        if now - self._checked_at < CHECK_INTERVAL:
            return
        self._checked_at = now
        if self.directory.stat().st_mtime_ns != self._folder_mtime:
            self._scan()

    def _scan(self) -> None:
        self._folder_mtime = self.directory.stat().st_mtime_ns
        keys: dict[str, tuple[float, ec.EllipticCurvePrivateKey]] = {}
        for path in self.directory.glob("*.pem"):
            key = serialization.load_pem_private_key(path.read_bytes(), None)
            if isinstance(key, ec.EllipticCurvePrivateKey):
                keys[thumbprint(key.public_key())] = (path.stat().st_mtime, key)
        if set(keys) != set(self._keys):
            self.revision += 1
        self._keys = {kid: key for kid, (_, key) in keys.items()}
        self._current = max(keys, key=lambda kid: keys[kid][0]) if keys else None
        self._checked_at = time.monotonic()

    def rotate(self) -> str:
        """Create a new signing key; older keys keep verifying until retired."""
        key = ec.generate_private_key(ec.SECP256R1())
        kid = thumbprint(key.public_key())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        temporary = self.directory / f".{kid}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(temporary, self.directory / f"{kid}.pem")
        self._scan()
        logger.info("signing key created", extra={"kid": kid})
        return kid

    def retire(self, kid: str) -> None:
        (self.directory / f"{kid}.pem").unlink()
        self._scan()

    def kids(self) -> list[str]:
        return sorted(self._keys)

    @property
    def current(self) -> tuple[str, ec.EllipticCurvePrivateKey]:
        self.refresh()
        if self._current is None:
            raise RuntimeError("no signing key loaded")
        return self._current, self._keys[self._current]

    def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        self.refresh()
        key = self._keys.get(kid)
        return None if key is None else key.public_key()
