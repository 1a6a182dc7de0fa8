"""Run ``skopeo copy`` against registries on loopback, over plain HTTP."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from benchlib import BenchError
from benchlib.loadgen import children_cpu_seconds

COPY_TIMEOUT = 900.0
REF_NAME = "org.opencontainers.image.ref.name"


class Skopeo:
    """skopeo with its own registries.conf that marks ``hosts`` as HTTP."""

    def __init__(self, folder: Path, hosts: list[str]) -> None:
        binary = shutil.which("skopeo")
        if binary is None:
            raise BenchError("skopeo is not installed: `apt-get install -y skopeo`")
        self.binary = binary
        # skopeo ignores CONTAINERS_REGISTRIES_CONF; it takes the file as a flag.
        self.registries_conf = folder / "registries.conf"
        entries = "".join(
            f'\n[[registry]]\nlocation = "{host}"\ninsecure = true\n' for host in hosts
        )
        self.registries_conf.write_text(
            "unqualified-search-registries = []\n" + entries
        )

    def copy(self, source: str, destination: str) -> float:
        """Copy an image; returns the CPU seconds skopeo used."""
        before = children_cpu_seconds()
        done = subprocess.run(
            [
                self.binary,
                "--registries-conf",
                str(self.registries_conf),
                "copy",
                "--quiet",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                source,
                destination,
            ],  # fmt: skip
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=COPY_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            tail = done.stderr[-1000:].decode(errors="replace")
            raise BenchError(f"skopeo copy {source} {destination} failed: {tail}")
        return children_cpu_seconds() - before


def layout_manifest(root: Path, tag: str) -> tuple[str, bytes]:
    """The digest and bytes of the manifest tagged ``tag`` in an OCI layout."""
    index = json.loads((root / "index.json").read_text())
    for entry in index.get("manifests", []):
        if entry.get("annotations", {}).get(REF_NAME) == tag:
            digest = str(entry["digest"])
            return digest, layout_blob_path(root, digest).read_bytes()
    raise BenchError(f"{root} has no manifest tagged {tag!r}")


def layout_blob_path(root: Path, digest: str) -> Path:
    algorithm, _, hex_digest = digest.partition(":")
    return root / "blobs" / algorithm / hex_digest


def check_layout_blob(root: Path, digest: str, size: int) -> None:
    """The layout holds the blob ``digest``, whole and intact."""
    sha = hashlib.sha256()
    length = 0
    with layout_blob_path(root, digest).open("rb") as blob:
        while piece := blob.read(1 << 20):
            sha.update(piece)
            length += len(piece)
    if length != size or "sha256:" + sha.hexdigest() != digest:
        raise BenchError(f"{root}: blob {digest} is damaged ({length} bytes)")
