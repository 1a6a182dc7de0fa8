"""A test OIDC issuer on loopback: publishes its keys and mints ID tokens.

It starts with one RSA and one EC signing key, serves them as a JWKS (and a
discovery document) from a background thread, and can rotate its keys or play
dead to exercise the relying party's key cache.
"""

from __future__ import annotations

import base64
import functools
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

DEFAULT_AUDIENCE = "dockyard"
DEFAULT_SUBJECT = "repo:acme/api:ref:refs/heads/main"
TOKEN_LIFETIME = 300
SHUTDOWN_POLL_SECONDS = 0.01


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def new_ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@functools.cache
def _first_keys() -> tuple[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]:
    # RSA keys are slow to make: issuers share their first ones, which is
    # harmless as each has its own address, hence its own `iss`.
    return new_rsa_key(), new_ec_key()


def public_jwk(key: SigningKey, kid: str) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        alg = "RS256"
    else:
        jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        alg = "ES256"
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


class OidcTestIssuer:
    """An issuer at http://127.0.0.1:<free port>; use it as a context manager."""

    def __init__(self, audience: str = DEFAULT_AUDIENCE) -> None:
        self.audience = audience
        self.rsa_key, self.ec_key = _first_keys()
        self.keys: dict[str, SigningKey] = {"rsa-1": self.rsa_key, "ec-1": self.ec_key}
        # Set to False to answer 503 on the JWKS, as an issuer having an outage.
        self.available = True
        self.jwks_requests = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._rotations = 0

    @property
    def issuer(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/.well-known/jwks.json"

    def __enter__(self) -> OidcTestIssuer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _serve(self) -> None:
        # A short poll keeps shutdown (once per test) quick.
        self._server.serve_forever(poll_interval=SHUTDOWN_POLL_SECONDS)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(key, kid) for kid, key in self.keys.items()]}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_url,
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        }

    def rotate(self, *, keep_old: bool = False) -> str:
        """Publish a new RSA key (dropping the others unless kept); its kid."""
        self._rotations += 1
        kid = f"rsa-rotated-{self._rotations}"
        kept = self.keys if keep_old else {}
        # A new dict, swapped in whole: the server thread may be reading the old.
        self.keys = {**kept, kid: new_rsa_key()}
        return kid

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Valid claims for now; an override of None drops that claim."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": DEFAULT_SUBJECT,
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_LIFETIME,
            "repository": "acme/api",
            "ref": "refs/heads/main",
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def issue(
        self,
        claims: dict[str, Any] | None = None,
        *,
        key: SigningKey | None = None,
        kid: str | None = "rsa-1",
        alg: str = "RS256",
    ) -> str:
        """A token with `claims` over the defaults, signed with `key` (else kid's)."""
        signing_key = key if key is not None else self.keys[kid or "rsa-1"]
        headers = {"kid": kid} if kid is not None else None
        payload = self.claims(**(claims or {}))
        return jwt.encode(payload, signing_key, algorithm=alg, headers=headers)

    def issue_raw(
        self,
        header: dict[str, Any],
        claims: dict[str, Any],
        sign: Callable[[bytes], bytes],
    ) -> str:
        """A token assembled by hand, for what PyJWT refuses to produce."""
        head = b64url(json.dumps(header).encode())
        body = b64url(json.dumps(self.claims(**claims)).encode())
        signing_input = f"{head}.{body}"
        return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


def _handler_for(issuer: OidcTestIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                self._send(200, issuer.discovery())
            elif self.path == "/.well-known/jwks.json":
                issuer.jwks_requests += 1
                if issuer.available:
                    self._send(200, issuer.jwks())
                else:
                    self._send(503, {"error": "unavailable"})
            else:
                self._send(404, {"error": "not found"})

        def _send(self, status: int, document: dict[str, Any]) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return Handler
