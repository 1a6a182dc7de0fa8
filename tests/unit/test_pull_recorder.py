"""The pull recorder: notes in memory, one batched write, nothing lost on failure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from dockyard.metadata.retention import Pull
from dockyard.services.pulls import PullRecorder

DIGEST = "sha256:" + "a" * 64


class FakeDatabase:
    """Collects the pulls each write would store; fails while `broken`."""

    dialect = "sqlite"

    def __init__(self) -> None:
        self.writes: list[list[Pull]] = []
        self.broken = False

    async def read(self, query: Callable[[sa.Connection], Any]) -> Any:
        raise AssertionError("the recorder never reads")

    async def write(
        self, change: Callable[[sa.Connection], Any], *, durable: bool = True
    ) -> Any:
        # Pull times are bookkeeping: a power loss may take the last few.
        assert not durable
        if self.broken:
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is gone"))
        pulls: list[Pull] = change.keywords["pulls"]  # type: ignore[attr-defined]
        self.writes.append(pulls)
        return len(pulls)

    async def close(self) -> None:
        pass


@pytest.fixture
def database() -> FakeDatabase:
    return FakeDatabase()


def flush(recorder: PullRecorder) -> int:
    return anyio.run(recorder.flush)


def test_many_pulls_of_one_manifest_make_one_row(database: FakeDatabase) -> None:
    recorder = PullRecorder(database)
    for _ in range(100):
        recorder.record("acme/app", DIGEST, "latest")

    assert flush(recorder) == 1
    (pull,) = database.writes[0]
    assert (pull.repository, pull.digest, pull.pinned_at) == ("acme/app", DIGEST, None)
    assert flush(recorder) == 0
    assert len(database.writes) == 1


def test_a_pull_by_digest_pins_and_a_later_pull_by_tag_keeps_the_pin(
    database: FakeDatabase,
) -> None:
    recorder = PullRecorder(database)
    recorder.record("acme/app", DIGEST, DIGEST)
    recorder.record("acme/app", DIGEST, "latest")

    flush(recorder)

    (pull,) = database.writes[0]
    assert pull.pinned_at is not None
    assert pull.pulled_at >= pull.pinned_at


def test_a_failed_write_keeps_the_pulls_for_the_next(
    database: FakeDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = PullRecorder(database)
    recorder.record("acme/app", DIGEST, DIGEST)
    database.broken = True

    assert flush(recorder) == 0
    assert "failed to record pulls" in caplog.text

    recorder.record("acme/app", DIGEST, "latest")
    database.broken = False
    assert flush(recorder) == 1
    (pull,) = database.writes[0]
    # The pin noted before the failure survived the merge with the newer pull.
    assert pull.pinned_at is not None


def test_stopping_writes_what_is_left(database: FakeDatabase) -> None:
    recorder = PullRecorder(database, interval=3600)

    async def serve_then_stop() -> None:
        recorder.start()
        recorder.record("acme/app", DIGEST, "latest")
        await recorder.stop()

    anyio.run(serve_then_stop)

    assert [len(batch) for batch in database.writes] == [1]
