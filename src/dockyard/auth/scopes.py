"""The Docker token scope grammar: `repository:<name>:<action>[,<action>]`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scope:
    type: str  # "repository" or "registry"
    name: str  # a repository name, or "catalog"
    actions: frozenset[str]

    def render(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


def parse_scope(text: str) -> Scope | None:
    """Parse one scope; None for anything malformed (it is then ignored).

    The name sits between the first and the last colon, as a repository name
    may not contain one but a future resource name could.
    """
    kind, sep, rest = text.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not kind or not name:
        return None
    wanted = frozenset(a for a in actions.split(",") if a)
    return Scope(kind, name, wanted) if wanted else None


def parse_scopes(values: list[str]) -> list[Scope]:
    """Every scope from repeated `scope` parameters, each maybe space-separated."""
    scopes: list[Scope] = []
    for value in values:
        for part in value.split():
            scope = parse_scope(part)
            if scope is not None:
                scopes.append(scope)
    return scopes
