"""Who a request comes from, and the grants that bound what it may do."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Literal

# Repository actions, as in the Docker token scope grammar.
PULL = "pull"
PUSH = "push"
DELETE = "delete"
ACTIONS = frozenset({PULL, PUSH, DELETE})

IdentityKind = Literal["anonymous", "user", "robot", "federated"]


@dataclass(frozen=True, slots=True)
class Grant:
    """Actions on the repositories whose names match `pattern` (a glob)."""

    pattern: str
    actions: frozenset[str]

    def covers(self, repository: str) -> bool:
        return fnmatch.fnmatchcase(repository, self.pattern)


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated (or anonymous) caller.

    Users get their rights from namespace roles, for themselves and for their
    groups. Robots and federated identities carry explicit `grants` instead,
    which are the most they may ever do.
    """

    subject: str
    kind: IdentityKind
    groups: tuple[str, ...] = ()
    is_admin: bool = False
    grants: tuple[Grant, ...] | None = None
    # Where the identity came from: "local", "ldap", "robot", "oidc:<issuer>".
    source: str = "local"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "anonymous"


ANONYMOUS = Identity(subject="anonymous", kind="anonymous", source="none")
