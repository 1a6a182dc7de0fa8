"""The management API's additions to the error table, and the store's failures.

Errors keep the registry's JSON envelope. The OCI table has no code for a name
that is taken, so CONFLICT lives here; bad input reuses the spec's UNSUPPORTED
code ("invalid set of parameters") with status 400, and bad names NAME_INVALID.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dockyard.metadata import accounts
from dockyard.oci import errcodes
from dockyard.oci.errcodes import ErrorCode, RegistryError

CONFLICT = ErrorCode("CONFLICT", "the resource already exists", 409)
INVALID_REQUEST = ErrorCode("UNSUPPORTED", "invalid request", 400)
DISABLED = ErrorCode("UNSUPPORTED", "management API needs auth.enabled", 404)


def invalid(message: str) -> RegistryError:
    return RegistryError(INVALID_REQUEST, message)


def invalid_name(message: str, name: str) -> RegistryError:
    return RegistryError(errcodes.NAME_INVALID, message, detail=name)


def unknown(what: str) -> RegistryError:
    return RegistryError(errcodes.NAME_UNKNOWN, f"{what} not found")


def denied(message: str) -> RegistryError:
    return RegistryError(errcodes.DENIED, message)


@contextmanager
def store_errors() -> Iterator[None]:
    """Turn the account store's exceptions into API errors (409 and 404)."""
    try:
        yield
    except accounts.AlreadyExists as exc:
        raise RegistryError(CONFLICT, str(exc)) from exc
    except accounts.NotFound as exc:
        raise unknown(str(exc)) from exc
