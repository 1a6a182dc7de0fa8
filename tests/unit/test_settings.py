from pathlib import Path

import pytest

from dockyard.settings import ConfigError, load_settings


def test_defaults_need_no_file() -> None:
    settings = load_settings(environ={})
    assert settings.http.port == 5000
    assert settings.database_url.startswith("sqlite:///")


def test_file_then_environment_then_overrides(tmp_path: Path) -> None:
    config = tmp_path / "dockyard.yaml"
    config.write_text("http:\n  port: 6000\n  workers: 3\nlog:\n  level: debug\n")
    settings = load_settings(
        config,
        environ={"DOCKYARD_HTTP_PORT": "7000", "DOCKYARD_DATA_DIR": "/srv/reg"},
        overrides={"http": {"workers": 2, "host": None}},
    )
    assert settings.http.port == 7000
    assert settings.http.workers == 2
    assert settings.log.level == "debug"
    assert settings.data_dir == Path("/srv/reg")


def test_toml_files_are_read(tmp_path: Path) -> None:
    config = tmp_path / "dockyard.toml"
    config.write_text('[storage]\nroot = "/blobs"\n')
    assert load_settings(config, environ={}).storage_root == Path("/blobs")


def test_every_problem_is_reported_with_its_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("http:\n  port: 70000\n  colour: blue\nlog:\n  level: loud\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    problems = caught.value.problems
    assert len(problems) == 3
    assert problems[0].startswith(f"{config}:2: http.port:")
    assert any(":3: http.colour: not a known setting" in p for p in problems)
    assert any(":5: log.level:" in p for p in problems)


def test_unparsable_file_is_one_clear_problem(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("http: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert "not valid yaml" in caught.value.problems[0]


def test_s3_storage_runs_with_several_workers() -> None:
    # Upload sessions on S3 are locked through the metadata database, so any
    # number of processes may share a bucket.
    settings = load_settings(
        environ={
            "DOCKYARD_STORAGE_DRIVER": "s3",
            "DOCKYARD_STORAGE_S3_BUCKET": "registry",
            "DOCKYARD_HTTP_WORKERS": "4",
        }
    )
    assert settings.storage.driver == "s3"
    assert settings.http.workers == 4
