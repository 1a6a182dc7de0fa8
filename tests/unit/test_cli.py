import socket
from pathlib import Path

import pytest

from dockyard import __version__
from dockyard.cli.main import main


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_config_check_accepts_a_valid_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "ok.toml"
    config.write_text("[http]\nport = 5001\n")
    assert main(["config", "check", str(config)]) == 0
    assert "ok" in capsys.readouterr().out


def test_config_check_prints_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("http:\n  port: zero\n  workers: 0\n")
    assert main(["config", "check", str(config)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"{config}:2: http.port:")
    assert lines[1].startswith(f"{config}:3: http.workers:")
    assert lines[-1] == "2 problem(s) found"


def test_db_upgrade_creates_the_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade", "--data-dir", str(tmp_path)]) == 0
    assert (tmp_path / "metadata.db").exists()
    assert main(["db", "current", "--data-dir", str(tmp_path)]) == 0
    assert "current" in capsys.readouterr().out


def test_serve_refuses_an_address_another_server_listens_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Even one that shares its port (SO_REUSEPORT): a second registry must not.
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        status = main(
            ["serve", "--port", str(port), "--data-dir", str(tmp_path / "data")]
        )
    assert status == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()
