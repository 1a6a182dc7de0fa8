"""`dockyard user|namespace|robot|audit|keys`: manage access from the shell.

These commands work on the database directly (no running server needed) and
record what they change in the audit log, as the management API does.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import re
import secrets
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockyard.auth.passwords import HtpasswdError, hash_password, read_htpasswd
from dockyard.auth.policy import ROLES
from dockyard.cli.database import CommandError, load, transaction
from dockyard.cli.options import add_config_option
from dockyard.metadata import accounts, quotas, tag_rules

ACTOR = "cli"
MIN_PASSWORD = 8


def _command(
    actions: Any, name: str, handler: Callable[[argparse.Namespace], int], help: str
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = actions.add_parser(name, help=help)
    add_config_option(parser)
    parser.set_defaults(handler=_guarded(handler))
    return parser


def _guarded(
    handler: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (
            CommandError,
            HtpasswdError,
            accounts.AlreadyExists,
            accounts.NotFound,
        ) as exc:
            print(f"dockyard: {exc}", file=sys.stderr)
            return 1

    return run


def _password(args: argparse.Namespace) -> str:
    password: str | None = args.password
    if password is None:
        password = (
            sys.stdin.readline().rstrip("\n")
            if args.password_stdin
            else getpass.getpass("password: ")
        )
    if len(password) < MIN_PASSWORD:
        raise CommandError(f"passwords need at least {MIN_PASSWORD} characters")
    return password


def _audit(conn: Any, action: str, target: str, namespace: str | None = None) -> None:
    accounts.record_event(
        conn,
        actor=ACTOR,
        action=action,
        outcome="success",
        target=target,
        namespace=namespace,
    )


# -- users -------------------------------------------------------------------


def register_users(commands: Any) -> None:
    user = commands.add_parser("user", help="manage users")
    actions = user.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, handler, text in (
        ("add", user_add, "create a user"),
        ("passwd", user_passwd, "set a user's password"),
    ):
        parser = _command(actions, name, handler, text)
        parser.add_argument("username")
        parser.add_argument("--password", help="(visible to other processes)")
        parser.add_argument("--password-stdin", action="store_true")
        if name == "add":
            parser.add_argument("--admin", action="store_true")
    _command(actions, "list", user_list, "list users")
    remove = _command(actions, "remove", user_remove, "delete a user")
    remove.add_argument("username")
    imported = _command(actions, "import-htpasswd", user_import, "import bcrypt users")
    imported.add_argument("file", type=Path)


def user_add(args: argparse.Namespace) -> int:
    password = _password(args)
    with transaction(load(args)) as conn:
        accounts.create_user(
            conn, args.username, hash_password(password), is_admin=args.admin
        )
        _audit(conn, "user.created", args.username)
    print(f"user {args.username} created")
    return 0


def user_passwd(args: argparse.Namespace) -> int:
    password = _password(args)
    with transaction(load(args)) as conn:
        accounts.update_user(conn, args.username, password_hash=hash_password(password))
        _audit(conn, "user.password_changed", args.username)
    print(f"password of {args.username} changed")
    return 0


def user_list(args: argparse.Namespace) -> int:
    with transaction(load(args)) as conn:
        users = accounts.list_users(conn)
    for user in users:
        role = "admin" if user.is_admin else "user"
        print(f"{user.username}\t{role}\t{user.source}")
    return 0


def user_remove(args: argparse.Namespace) -> int:
    with transaction(load(args)) as conn:
        accounts.delete_user(conn, args.username)
        _audit(conn, "user.deleted", args.username)
    print(f"user {args.username} removed")
    return 0


def user_import(args: argparse.Namespace) -> int:
    entries = list(read_htpasswd(args.file))
    created = 0
    with transaction(load(args)) as conn:
        for username, hashed in entries:
            if accounts.get_user(conn, username) is None:
                accounts.create_user(conn, username, hashed, source="htpasswd")
                _audit(conn, "user.created", username)
                created += 1
            else:
                accounts.update_user(conn, username, password_hash=hashed)
    print(f"{created} user(s) created, {len(entries) - created} updated")
    return 0


# -- namespaces ----------------------------------------------------------------


def register_namespaces(commands: Any) -> None:
    namespace = commands.add_parser("namespace", help="manage namespaces and roles")
    actions = namespace.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = _command(actions, "create", namespace_create, "create a namespace")
    create.add_argument("name")
    create.add_argument("--public", action="store_true", help="anonymous pull")
    _command(actions, "list", namespace_list, "list namespaces")
    for name, handler, text in (
        ("delete", namespace_delete, "delete a namespace and its roles"),
        ("members", namespace_members, "list a namespace's role bindings"),
    ):
        _command(actions, name, handler, text).add_argument("name")
    quota = _command(actions, "quota", namespace_quota, "set or clear a storage quota")
    quota.add_argument("name")
    quota.add_argument("size", help="bytes, with an optional KiB/MiB/GiB/TiB, or none")
    _command(
        actions, "usage", namespace_usage, "bytes used and the quota"
    ).add_argument("name")
    visibility = _command(actions, "visibility", namespace_visibility, "public/private")
    visibility.add_argument("name")
    visibility.add_argument("visibility", choices=["public", "private"])
    for name, handler, text in (
        ("grant", namespace_grant, "give a user or group a role"),
        ("revoke", namespace_revoke, "take a role binding away"),
    ):
        parser = _command(actions, name, handler, text)
        parser.add_argument("name", help="namespace")
        parser.add_argument("subject", help="user name, or group:<name>")
        if name == "grant":
            parser.add_argument("role", choices=ROLES)
        parser.add_argument(
            "--pattern", default="*", help="repositories inside the namespace (glob)"
        )


def _subject(text: str) -> tuple[str, str]:
    if text.startswith("group:"):
        return "group", text[len("group:") :]
    return "user", text


def namespace_create(args: argparse.Namespace) -> int:
    with transaction(load(args)) as conn:
        accounts.create_namespace(conn, args.name, public=args.public)
        _audit(conn, "namespace.created", args.name, args.name)
    print(f"namespace {args.name} created ({'public' if args.public else 'private'})")
    return 0


def namespace_list(args: argparse.Namespace) -> int:
    with transaction(load(args)) as conn:
        for record in accounts.list_namespaces(conn):
            print(f"{record.name}\t{'public' if record.public else 'private'}")
    return 0


def namespace_delete(args: argparse.Namespace) -> int:
    with transaction(load(args)) as conn:
        accounts.delete_namespace(conn, args.name)
        _audit(conn, "namespace.deleted", args.name, args.name)
    print(f"namespace {args.name} deleted")
    return 0


def namespace_visibility(args: argparse.Namespace) -> int:
    with transaction(load(args)) as conn:
        accounts.set_namespace_public(conn, args.name, args.visibility == "public")
        _audit(conn, "namespace.updated", args.name, args.name)
    print(f"namespace {args.name} is {args.visibility}")
    return 0


_UNITS = {"": 1, "B": 1, "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}


def _size(text: str) -> int | None:
    if text.lower() == "none":
        return None
    match = re.fullmatch(r"(\d+)\s*([a-zA-Z]*)", text.strip())
    number, unit = (match.group(1), match.group(2).upper()) if match else ("", "?")
    if not number or unit not in _UNITS:
        raise CommandError(f"not a size: {text!r} (try 500MiB, 10GiB or none)")
    return int(number) * _UNITS[unit]


def namespace_quota(args: argparse.Namespace) -> int:
    size = _size(args.size)
    with transaction(load(args)) as conn:
        quotas.set_quota(conn, args.name, size)
        _audit(conn, "namespace.quota", f"{args.name}={size}", args.name)
    print(f"quota of {args.name}: {'none' if size is None else f'{size} bytes'}")
    return 0


def namespace_usage(args: argparse.Namespace) -> int:
    with transaction(load(args)) as conn:
        found = quotas.usage(conn, args.name)
    limit = "none" if found.quota_bytes is None else str(found.quota_bytes)
    print(f"{found.namespace}\tused={found.used_bytes}\tquota={limit}")
    return 0


def namespace_members(args: argparse.Namespace) -> int:
    with transaction(load(args)) as conn:
        for binding in accounts.list_bindings(conn, args.name):
            print(
                f"{binding.subject_kind}:{binding.subject}\t{binding.role}"
                f"\t{binding.pattern}"
            )
    return 0


def namespace_grant(args: argparse.Namespace) -> int:
    kind, subject = _subject(args.subject)
    with transaction(load(args)) as conn:
        accounts.bind_role(conn, args.name, kind, subject, args.role, args.pattern)
        _audit(conn, "member.added", f"{kind}:{subject}={args.role}", args.name)
    print(f"{kind} {subject} is {args.role} of {args.name}/{args.pattern}")
    return 0


def namespace_revoke(args: argparse.Namespace) -> int:
    kind, subject = _subject(args.subject)
    with transaction(load(args)) as conn:
        accounts.unbind_role(conn, args.name, kind, subject, args.pattern)
        _audit(conn, "member.removed", f"{kind}:{subject}", args.name)
    print(f"{kind} {subject} removed from {args.name}/{args.pattern}")
    return 0


# -- immutable tags ----------------------------------------------------------------


def register_tag_rules(commands: Any) -> None:
    rules = commands.add_parser("immutable", help="manage immutable-tag rules")
    actions = rules.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, handler, text in (
        ("add", rule_add, "protect matching tags from being moved or deleted"),
        ("remove", rule_remove, "remove a rule"),
    ):
        parser = _command(actions, name, handler, text)
        parser.add_argument("namespace")
        parser.add_argument("tag_pattern", help="glob over tag names, e.g. 'v*'")
        parser.add_argument(
            "--repository", default="*", help="repositories inside the namespace"
        )
    _command(actions, "list", rule_list, "list a namespace's rules").add_argument(
        "namespace"
    )


def rule_add(args: argparse.Namespace) -> int:
    with transaction(load(args)) as conn:
        tag_rules.add_rule(conn, args.namespace, args.tag_pattern, args.repository)
        _audit(conn, "immutable.added", args.tag_pattern, args.namespace)
    print(
        f"tags {args.tag_pattern} of {args.namespace}/{args.repository} are immutable"
    )
    return 0


def rule_remove(args: argparse.Namespace) -> int:
    with transaction(load(args)) as conn:
        tag_rules.remove_rule(conn, args.namespace, args.tag_pattern, args.repository)
        _audit(conn, "immutable.removed", args.tag_pattern, args.namespace)
    print(f"rule {args.tag_pattern} removed from {args.namespace}")
    return 0


def rule_list(args: argparse.Namespace) -> int:
    with transaction(load(args)) as conn:
        for rule in tag_rules.list_rules(conn, args.namespace):
            print(f"{rule.repository_pattern}\t{rule.tag_pattern}")
    return 0


# -- robots ----------------------------------------------------------------------


def register_robots(commands: Any) -> None:
    robot = commands.add_parser("robot", help="manage robot accounts for CI")
    actions = robot.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = _command(actions, "create", robot_create, "create a robot account")
    create.add_argument("name", help="stored as robot$<name>")
    create.add_argument(
        "--grant",
        action="append",
        required=True,
        metavar="REPOSITORY=ACTIONS",
        help="e.g. 'acme/*=pull,push' (repeatable)",
    )
    create.add_argument("--expires-in-days", type=int)
    _command(actions, "list", robot_list, "list robot accounts")
    revoke = _command(actions, "revoke", robot_revoke, "revoke a robot account")
    revoke.add_argument("name")


def _grant(text: str) -> dict[str, Any]:
    repository, sep, actions = text.partition("=")
    wanted = sorted({a for a in actions.split(",") if a})
    if not sep or not repository or not wanted:
        raise CommandError(f"grant {text!r} is not REPOSITORY=ACTIONS")
    unknown = set(wanted) - {"pull", "push", "delete"}
    if unknown:
        raise CommandError(f"unknown actions {sorted(unknown)} in {text!r}")
    return {"repository": repository, "actions": wanted}


def robot_create(args: argparse.Namespace) -> int:
    grants = [_grant(text) for text in args.grant]
    name = args.name if args.name.startswith("robot$") else f"robot${args.name}"
    secret = secrets.token_urlsafe(32)
    expires = (
        time.time() + args.expires_in_days * 86400 if args.expires_in_days else None
    )
    with transaction(load(args)) as conn:
        accounts.create_robot(conn, name, hash_password(secret), grants, expires, ACTOR)
        _audit(conn, "robot.created", name)
    print(json.dumps({"name": name, "secret": secret, "grants": grants}))
    print("the secret is shown once; store it now", file=sys.stderr)
    return 0


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def robot_list(args: argparse.Namespace) -> int:
    with transaction(load(args)) as conn:
        for robot in accounts.list_robots(conn):
            state = "revoked" if robot.revoked else "active"
            grants = " ".join(
                f"{g['repository']}={','.join(g['actions'])}" for g in robot.grants
            )
            print(
                f"{robot.name}\t{state}\texpires={_when(robot.expires_at)}"
                f"\tlast_used={_when(robot.last_used_at)}\t{grants}"
            )
    return 0


def robot_revoke(args: argparse.Namespace) -> int:
    name = args.name if args.name.startswith("robot$") else f"robot${args.name}"
    with transaction(load(args)) as conn:
        accounts.revoke_robot(conn, name)
        _audit(conn, "robot.revoked", name)
    print(f"{name} revoked")
    return 0


# -- audit log -------------------------------------------------------------------


def register_audit(commands: Any) -> None:
    audit = commands.add_parser("audit", help="query the audit log")
    actions = audit.add_subparsers(dest="action", metavar="ACTION", required=True)
    query = _command(actions, "list", audit_list, "list audit events, newest first")
    query.add_argument("--namespace")
    query.add_argument("--actor")
    query.add_argument("--action", dest="event_action")
    query.add_argument("--since", help="RFC 3339 time, e.g. 2026-12-01T00:00:00Z")
    query.add_argument("--until", help="RFC 3339 time")
    query.add_argument("--limit", type=int, default=100)
    query.add_argument("--json", action="store_true", help="one JSON object a line")


def _timestamp(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise CommandError(f"not an RFC 3339 time: {text!r}") from exc


def audit_list(args: argparse.Namespace) -> int:
    with transaction(load(args)) as conn:
        events = accounts.list_events(
            conn,
            namespace=args.namespace,
            actor=args.actor,
            action=args.event_action,
            since=_timestamp(args.since),
            until=_timestamp(args.until),
            limit=args.limit,
        )
    for event in events:
        if args.json:
            print(json.dumps({**dataclasses.asdict(event), "time": _when(event.time)}))
        else:
            print(
                f"{_when(event.time)}\t{event.actor}\t{event.action}\t{event.outcome}"
                f"\t{event.target or '-'}\t{event.remote or '-'}"
            )
    return 0


# -- signing keys ----------------------------------------------------------------


def register_keys(commands: Any) -> None:
    keys = commands.add_parser("keys", help="manage token signing keys")
    actions = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    _command(actions, "list", keys_list, "list signing keys (newest signs)")
    _command(actions, "rotate", keys_rotate, "create a new signing key")
    retire = _command(actions, "retire", keys_retire, "remove an old key")
    retire.add_argument("kid")


def _keys(args: argparse.Namespace) -> Any:
    from dockyard.auth.keys import SigningKeys

    keys = SigningKeys(load(args).keys_dir)
    keys.load(create=False)
    return keys


def keys_list(args: argparse.Namespace) -> int:
    keys = _keys(args)
    current = keys.current[0] if keys.kids() else None
    for kid in keys.kids():
        print(f"{kid}\t{'signing' if kid == current else 'verifying'}")
    return 0


def keys_rotate(args: argparse.Namespace) -> int:
    print(_keys(args).rotate())
    return 0


def keys_retire(args: argparse.Namespace) -> int:
    keys = _keys(args)
    if args.kid not in keys.kids():
        raise CommandError(f"no key {args.kid!r}")
    if keys.current[0] == args.kid:
        raise CommandError("rotate first: the newest key signs every token")
    keys.retire(args.kid)
    print(f"{args.kid} retired")
    return 0
