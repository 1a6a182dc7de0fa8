import json

from dockyard.log_lines import json_line, text_line, timestamp

# 2026-12-04T18:15:49.934Z
CREATED = 1796408149.934


def test_timestamp_is_utc_to_the_millisecond() -> None:
    assert timestamp(CREATED) == "2026-12-04T18:15:49.934Z"


def test_text_line_quotes_only_values_that_need_it() -> None:
    line = text_line(
        CREATED,
        "warning",
        "dockyard.server.supervisor",
        "worker died, starting another",
        {"pid": 41, "status": -9, "path": "/v2/a b", "empty": ""},
    )

    assert line == (
        "2026-12-04T18:15:49.934Z WARNING dockyard.server.supervisor "
        'worker died, starting another pid=41 status=-9 path="/v2/a b" empty=""'
    )


def test_json_line_is_one_object_with_the_fields_after_the_message() -> None:
    line = json_line(CREATED, "INFO", "dockyard.app", "registry ready", {"pid": 7})

    assert "\n" not in line
    assert json.loads(line) == {
        "time": "2026-12-04T18:15:49.934Z",
        "level": "info",
        "logger": "dockyard.app",
        "message": "registry ready",
        "pid": 7,
    }
