"""Authenticate users against an LDAP directory and read their groups.

A simple bind as the user proves the password. The user's groups come from a
search under `group_base`, run as the service account when one is configured
and as the user otherwise. ldap3 blocks, so each attempt runs in a worker
thread, bounded by socket timeouts taken from the settings.
"""

from __future__ import annotations

import contextlib
import logging
import math
import ssl
from typing import Any

import anyio.to_thread
from ldap3 import NONE, SIMPLE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from dockyard.auth.identity import Identity
from dockyard.settings import LdapSettings

logger = logging.getLogger(__name__)

_SUCCESS = 0
# Bind results that mean "not this user with this password" rather than "the
# directory cannot answer": noSuchObject, invalidDNSyntax,
# inappropriateAuthentication, invalidCredentials, insufficientAccessRights and
# unwillingToPerform (a locked account, or a bind the server refuses outright).
_REJECTED_BIND_RESULTS = frozenset({32, 34, 48, 49, 50, 53})


class LdapUnavailable(Exception):
    """The directory gave no answer about the user.

    Unreachable, too slow, refusing StartTLS or presenting an untrusted
    certificate, rejecting the service account, or failing the group search.
    The caller answers 503; bad credentials are not this error.
    """


class LdapAuthenticator:
    """Checks a username and password against the directory."""

    def __init__(self, settings: LdapSettings) -> None:
        _check_settings(settings)
        self._settings = settings
        # Fails here, at start-up, on a malformed URL.
        self._server = _make_server(settings)

    async def authenticate(self, username: str, password: str) -> Identity | None:
        """The user's identity, or None when the directory rejects them.

        Raises LdapUnavailable when the directory cannot be asked.
        """
        # An empty password makes a simple bind anonymous, which succeeds.
        if not password or not _plausible(username):
            return None
        return await anyio.to_thread.run_sync(self._authenticate, username, password)

    def _authenticate(self, username: str, password: str) -> Identity | None:
        user_dn = self._settings.user_dn_template.format(username=escape_rdn(username))
        try:
            groups = self._bind_and_search(user_dn, username, password)
        except LDAPException as exc:
            raise LdapUnavailable(f"failed to query the ldap directory: {exc}") from exc
        if groups is None:
            return None
        return Identity(subject=username, kind="user", groups=groups, source="ldap")

    def _bind_and_search(
        self, user_dn: str, username: str, password: str
    ) -> tuple[str, ...] | None:
        connection = Connection(
            self._server,
            # ldap3 packs this into a struct timeval and so needs an integer.
            receive_timeout=math.ceil(self._settings.timeout),
            read_only=True,
            raise_exceptions=False,
        )
        try:
            self._open(connection)
            if not _bind(connection, user_dn, password):
                logger.debug(
                    "ldap bind rejected",
                    extra={"username": username, **_result_fields(connection)},
                )
                return None
            group_base = self._settings.group_base
            if group_base is None:
                return ()
            self._bind_service(connection)
            return self._search_groups(connection, group_base, user_dn, username)
        finally:
            _close(connection)

    def _open(self, connection: Connection) -> None:
        connection.open(read_server_info=False)
        if self._settings.start_tls:
            # Before any bind, so no password crosses the wire in clear.
            connection.start_tls(read_server_info=False)

    def _bind_service(self, connection: Connection) -> None:
        settings = self._settings
        if settings.bind_dn is None or settings.bind_password is None:
            return
        if not _bind(connection, settings.bind_dn, settings.bind_password):
            reason = connection.result.get("description")
            raise LdapUnavailable(f"failed to bind the ldap service account: {reason}")

    def _search_groups(
        self, connection: Connection, group_base: str, user_dn: str, username: str
    ) -> tuple[str, ...]:
        settings = self._settings
        search_filter = settings.group_filter.format(
            user_dn=escape_filter_chars(user_dn),
            username=escape_filter_chars(username),
        )
        connection.search(
            group_base,
            search_filter,
            search_scope=SUBTREE,
            attributes=[settings.group_attribute],
        )
        if connection.result.get("result") != _SUCCESS:
            reason = connection.result.get("description")
            raise LdapUnavailable(f"failed to search ldap groups: {reason}")
        return _group_names(connection.response or [], settings.group_attribute)


def _plausible(username: str) -> bool:
    # The directory ignores surrounding spaces when it matches the DN, so
    # " alice" would bind as alice yet carry a different subject.
    return bool(username) and username == username.strip()


def _make_server(settings: LdapSettings) -> Server:
    # ldap3 trusts any certificate unless told to validate.
    tls = Tls(validate=ssl.CERT_REQUIRED)
    return Server(
        settings.url, connect_timeout=settings.timeout, get_info=NONE, tls=tls
    )


def _check_settings(settings: LdapSettings) -> None:
    """Fail at start-up, not at the first login, on settings that cannot work."""
    try:
        settings.user_dn_template.format(username="x")
        settings.group_filter.format(user_dn="x", username="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"invalid ldap template field: {exc}") from exc
    if settings.bind_dn is not None and not settings.bind_password:
        # An empty password would make the service bind anonymous.
        raise ValueError("ldap bind_dn is set without bind_password")


def _bind(connection: Connection, dn: str, password: str) -> bool:
    """Bind on the open connection; False when the directory rejects it."""
    bound = connection.rebind(user=dn, password=password, authentication=SIMPLE)
    if bound:
        return True
    if connection.result.get("result") in _REJECTED_BIND_RESULTS:
        return False
    reason = connection.result.get("description")
    raise LdapUnavailable(f"failed to bind to ldap: {reason}")


def _group_names(response: list[dict[str, Any]], attribute: str) -> tuple[str, ...]:
    names: set[str] = set()
    for entry in response:
        if entry.get("type") != "searchResEntry":
            continue  # referrals and the like
        values = entry.get("attributes", {}).get(attribute, [])
        if isinstance(values, str):
            values = [values]
        names.update(str(value) for value in values)
    return tuple(sorted(names))


def _close(connection: Connection) -> None:
    if connection.closed:
        return
    # The socket is closed either way; an error here would hide the first one.
    with contextlib.suppress(LDAPException):
        connection.unbind()


def _result_fields(connection: Connection) -> dict[str, Any]:
    result = connection.result or {}
    return {"ldap_result": result.get("result"), "reason": result.get("description")}
