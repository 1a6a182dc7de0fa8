"""Who may do what: namespace roles, personal namespaces, explicit grants."""

from __future__ import annotations

import fnmatch

from dockyard.auth.identity import ACTIONS, DELETE, PULL, PUSH, Identity
from dockyard.metadata.account_store import AccountStore

ROLES = ("reader", "writer", "maintainer", "owner")
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "reader": frozenset({PULL}),
    "writer": frozenset({PULL, PUSH}),
    "maintainer": frozenset({PULL, PUSH, DELETE}),
    "owner": frozenset({PULL, PUSH, DELETE}),
}
NONE: frozenset[str] = frozenset()


def namespace_of(repository: str) -> str:
    return repository.split("/", 1)[0]


def pattern_covers(namespace: str, pattern: str, repository: str) -> bool:
    """Role patterns are globs over the name inside the namespace (`*`: all)."""
    inner = repository[len(namespace) + 1 :] if "/" in repository else ""
    return fnmatch.fnmatchcase(inner, pattern)


class AccessPolicy:
    def __init__(self, accounts: AccountStore) -> None:
        self.accounts = accounts

    async def actions(self, identity: Identity, repository: str) -> frozenset[str]:
        """Every action the identity may take on the repository."""
        if identity.is_admin:
            return ACTIONS
        namespace = namespace_of(repository)
        if identity.kind == "user" and namespace == identity.subject:
            return ACTIONS  # everyone owns their personal namespace

        username = identity.subject if identity.kind == "user" else ""
        record, bindings = await self.accounts.bindings_for(
            namespace, username, identity.groups
        )
        # Public namespaces: what anonymous callers may do, everyone may.
        granted = {PULL} if record is not None and record.public else set()
        if identity.grants is not None:
            # Robots and pipelines hold their explicit grants, never roles.
            for grant in identity.grants:
                if grant.covers(repository):
                    granted |= grant.actions
            return frozenset(granted)
        for binding in bindings:
            if pattern_covers(namespace, binding.pattern, repository):
                granted |= ROLE_ACTIONS.get(binding.role, NONE)
        return frozenset(granted)

    async def may_manage(self, identity: Identity, namespace: str) -> bool:
        """Owners (and administrators) manage a namespace's members."""
        return await self._holds(identity, namespace, {"owner"})

    async def may_manage_rules(self, identity: Identity, namespace: str) -> bool:
        """Maintainers and owners manage a namespace's tag rules."""
        return await self._holds(identity, namespace, {"maintainer", "owner"})

    async def _holds(self, identity: Identity, namespace: str, roles: set[str]) -> bool:
        """One of `roles` on the whole namespace (or admin, or its personal owner)."""
        if identity.is_admin:
            return True
        if identity.kind != "user":
            return False
        if namespace == identity.subject:
            return True
        _, bindings = await self.accounts.bindings_for(
            namespace, identity.subject, identity.groups
        )
        return any(b.role in roles and b.pattern == "*" for b in bindings)
