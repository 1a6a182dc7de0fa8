"""A throwaway S3 endpoint on loopback: moto's standalone server.

No real object store is packaged for these machines; moto speaks the S3
protocol over HTTP (multipart uploads, part copies and presigned URLs included)
and keeps everything in memory, so one server serves the whole session and
each test takes a fresh bucket.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import httpx
import pytest

from dockyard.storage.drivers.s3 import MIN_PART, S3Driver
from tests.support.server import free_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# moto accepts any credentials; these only have to be present and consistent.
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"
START_TIMEOUT = 30.0


def _moto_server() -> Path:
    beside_python = Path(sys.executable).parent / "moto_server"
    if beside_python.exists():
        return beside_python
    found = shutil.which("moto_server")
    if found is None:
        message = 'moto is not installed (pip install "moto[server]")'
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(found)


class MotoServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoServer:
        self._process = subprocess.Popen(
            [_moto_server(), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"moto_server exited with {self._process.returncode}"
                )
            try:
                httpx.get(self.url, timeout=1.0)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto_server did not answer on {self.url}")

    def create_bucket(self) -> str:
        """A new, empty bucket with a unique name."""
        name = f"dockyard-{uuid.uuid4().hex[:16]}"
        response = httpx.put(f"{self.url}/{name}", timeout=10.0)
        response.raise_for_status()
        return name

    def driver(self, bucket: str | None = None, **options: Any) -> S3Driver:
        """An S3 driver on `bucket` (a new one when None), with test-sized parts."""
        options.setdefault("part_size", MIN_PART)
        return S3Driver(
            bucket or self.create_bucket(),
            endpoint_url=self.url,
            region=REGION,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            **options,
        )

    def client(self) -> S3Client:
        """A plain boto3 client, to look at what a driver left in a bucket."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def keys(self, bucket: str) -> list[str]:
        listing = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
