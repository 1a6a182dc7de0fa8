"""The account commands, run in-process against a throwaway database."""

from __future__ import annotations

import json
from pathlib import Path

import bcrypt
import pytest

from dockyard.cli.main import main


def run(data: Path, *args: str) -> int:
    return main([*args, "--data-dir", str(data)])


def test_user_lifecycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "user", "add", "alice", "--password", "first-pass") == 0
    assert (
        run(tmp_path, "user", "add", "root", "--password", "root-pass", "--admin") == 0
    )
    assert run(tmp_path, "user", "passwd", "alice", "--password", "second-pass") == 0
    capsys.readouterr()

    assert run(tmp_path, "user", "list") == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed == ["alice\tuser\tlocal", "root\tadmin\tlocal"]

    assert run(tmp_path, "user", "remove", "alice") == 0
    assert run(tmp_path, "user", "remove", "alice") == 1
    assert "no user" not in capsys.readouterr().out


def test_short_passwords_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, "user", "add", "bob", "--password", "short") == 1
    assert "at least 8 characters" in capsys.readouterr().err


def test_duplicate_user_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(tmp_path, "user", "add", "carol", "--password", "carol-pass")
    assert run(tmp_path, "user", "add", "carol", "--password", "carol-pass") == 1
    assert "already exists" in capsys.readouterr().err


def test_htpasswd_import_creates_and_updates_users(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(tmp_path, "user", "add", "dave", "--password", "dave-pass")
    hashed = bcrypt.hashpw(b"erin-pass", bcrypt.gensalt(4)).decode()
    htpasswd = tmp_path / "users.htpasswd"
    # htpasswd writes $2y$; both forms must import.
    htpasswd.write_text(f"# comment\nerin:{'$2y$' + hashed[4:]}\ndave:{hashed}\n")
    capsys.readouterr()

    assert run(tmp_path, "user", "import-htpasswd", str(htpasswd)) == 0
    assert "1 user(s) created, 1 updated" in capsys.readouterr().out


def test_htpasswd_with_other_hashes_is_refused_by_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    htpasswd = tmp_path / "users.htpasswd"
    htpasswd.write_text("frank:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
    assert run(tmp_path, "user", "import-htpasswd", str(htpasswd)) == 1
    assert "users.htpasswd:1: frank: only bcrypt hashes" in capsys.readouterr().err


def test_robot_secret_is_shown_once_and_stored_hashed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, "robot", "create", "ci", "--grant", "acme/*=pull,push") == 0
    created = json.loads(capsys.readouterr().out)
    assert created["name"] == "robot$ci"
    assert len(created["secret"]) >= 40

    assert run(tmp_path, "robot", "list") == 0
    listed = capsys.readouterr().out
    assert "robot$ci\tactive" in listed
    assert created["secret"] not in listed
    database = (tmp_path / "metadata.db").read_bytes()
    assert created["secret"].encode() not in database


def test_robot_grants_are_validated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, "robot", "create", "bad", "--grant", "acme/*=fly") == 1
    assert "unknown actions" in capsys.readouterr().err


def test_namespace_roles_and_audit_trail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(tmp_path, "namespace", "create", "acme")
    run(tmp_path, "namespace", "grant", "acme", "group:ops", "maintainer")
    run(tmp_path, "namespace", "grant", "acme", "gina", "writer", "--pattern", "web-*")
    capsys.readouterr()

    run(tmp_path, "namespace", "members", "acme")
    assert capsys.readouterr().out.splitlines() == [
        "group:ops\tmaintainer\t*",
        "user:gina\twriter\tweb-*",
    ]
    run(tmp_path, "audit", "list", "--namespace", "acme", "--json")
    actions = [
        json.loads(line)["action"] for line in capsys.readouterr().out.splitlines()
    ]
    assert actions == ["member.added", "member.added", "namespace.created"]
