"""The load generators: reading hey's summary, and the Python fallback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from benchlib import BenchError
from benchlib.loadgen import LoadResult, LoadSpec, parse_hey, run_load

HEY_REPORT = """
Summary:
  Total:\t2.0100 secs
  Slowest:\t0.0992 secs
  Requests/sec:\t300.0000

  Total data:\t3000 bytes
  Size/request:\t5 bytes

Status code distribution:
  [200]\t600 responses
  [503]\t3 responses

Error distribution:
  [2]\tGet "http://127.0.0.1:1/": dial tcp: connection refused
"""

BODY = b"hello"


def test_parse_hey_counts_expected_statuses_errors_and_data() -> None:
    result = parse_hey(HEY_REPORT)

    assert result.seconds == pytest.approx(2.01)
    assert result.ok == 600
    assert result.failed == 3 + 2
    assert result.body_bytes == 3000
    assert result.statuses == {"200": 600, "503": 3}


def test_parse_hey_counts_404_as_good_when_expected() -> None:
    result = parse_hey(HEY_REPORT.replace("[200]", "[404]"), expect=404)

    assert result.ok == 600


def test_check_rejects_too_many_failures() -> None:
    with pytest.raises(BenchError, match="failed"):
        LoadResult("hey", 1.0, ok=90, failed=10).check()


def test_check_rejects_answers_of_the_wrong_size() -> None:
    with pytest.raises(BenchError, match="bytes"):
        LoadResult("hey", 1.0, ok=10, failed=0, body_bytes=49).check(length=5)


def test_check_accepts_a_clean_load() -> None:
    LoadResult("hey", 1.0, ok=10, failed=0, body_bytes=50).check(length=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, body: bool) -> None:
        if self.path.startswith("/chunked"):
            self._answer_in_chunks()
            return
        status = 404 if self.path.startswith("/missing") else 200
        self.send_response(status)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        if body:
            self.wfile.write(BODY)

    def _answer_in_chunks(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in (b"hel", b"lo", b""):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def http_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_python_generator_sends_the_requested_number(
    http_server: str, method: str
) -> None:
    spec = LoadSpec(f"{http_server}/x", method, {}, concurrency=4, requests=200)

    result = run_load(spec, "python")

    assert result.ok == 200
    assert result.failed == 0
    result.check(length=len(BODY))


def test_python_generator_reads_chunked_answers_to_their_end(
    http_server: str,
) -> None:
    spec = LoadSpec(f"{http_server}/chunked", "GET", {}, concurrency=3, requests=60)

    result = run_load(spec, "python")

    assert (result.ok, result.failed) == (60, 0)
    assert result.body_bytes == 0


def test_python_generator_counts_other_statuses_as_failures(http_server: str) -> None:
    spec = LoadSpec(f"{http_server}/missing", "GET", {}, concurrency=2, requests=20)

    result = run_load(spec, "python")

    assert result.ok == 0
    assert result.statuses == {"404": 20}
    assert result.failed == 20


def test_a_load_needs_a_duration_or_a_count() -> None:
    with pytest.raises(ValueError):
        LoadSpec("http://127.0.0.1:1/", "GET", {}, concurrency=1)
