"""Write OCI image layouts to disk, for feeding real clients in tests.

A layout is the on-disk format that `skopeo copy oci:DIR:TAG` and
`podman pull oci:DIR:TAG` read:

    DIR/
      oci-layout                 {"imageLayoutVersion": "1.0.0"}
      index.json                 one descriptor per tag (ref.name annotation)
      blobs/sha256/<hex>         layers, configs, manifests and indexes

Content comes from a seeded random generator and every timestamp is fixed, so
the same seed always gives the same digests. Tests that need distinct content
pass distinct seeds.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

FIXED_MTIME = 1_700_000_000
FIXED_CREATED = "2023-11-14T22:13:20Z"
DEFAULT_LAYER_BYTES = 96 * 1024
DEFAULT_PLATFORMS = (("linux", "amd64"), ("linux", "arm64"))


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(document: dict[str, Any]) -> bytes:
    """Compact, key-sorted JSON: stable bytes, hence a stable digest."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class Image:
    """What was written for one image manifest."""

    manifest: Descriptor
    manifest_bytes: bytes
    config: Descriptor
    layers: tuple[Descriptor, ...]
    diff_ids: tuple[str, ...]
    platform: tuple[str, str]

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def layer_digests(self) -> list[str]:
        return [layer.digest for layer in self.layers]


@dataclass(frozen=True)
class ImageIndex:
    """What was written for a multi-platform image index."""

    index: Descriptor
    index_bytes: bytes
    images: tuple[Image, ...]

    @property
    def digest(self) -> str:
        return self.index.digest

    def image_for(self, architecture: str) -> Image:
        for image in self.images:
            if image.platform[1] == architecture:
                return image
        raise KeyError(architecture)


class OciLayout:
    """An OCI image layout directory that blobs and tags are added to."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs" / "sha256"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        if not self.index_path.exists():
            self._write_index([])

    @property
    def index_path(self) -> Path:
        return self.root / "index.json"

    def write_blob(self, media_type: str, data: bytes) -> Descriptor:
        digest = sha256_digest(data)
        (self.blob_dir / digest.removeprefix("sha256:")).write_bytes(data)
        return Descriptor(media_type, digest, len(data))

    def read_blob(self, digest: str) -> bytes:
        return (self.blob_dir / digest.removeprefix("sha256:")).read_bytes()

    def tag(self, descriptor: Descriptor, tag: str) -> None:
        """Point `tag` at a manifest or index, replacing any earlier entry."""
        entries = [
            entry
            for entry in self.index_entries()
            if entry.get("annotations", {}).get(REF_NAME_ANNOTATION) != tag
        ]
        entry = descriptor.to_json()
        entry["annotations"] = {REF_NAME_ANNOTATION: tag}
        self._write_index([*entries, entry])

    def index_entries(self) -> list[dict[str, Any]]:
        document = json.loads(self.index_path.read_text())
        entries: list[dict[str, Any]] = document.get("manifests", [])
        return entries

    def resolve(self, tag: str) -> dict[str, Any]:
        """The index.json descriptor for `tag` (KeyError if absent)."""
        for entry in self.index_entries():
            if entry.get("annotations", {}).get(REF_NAME_ANNOTATION) == tag:
                return entry
        raise KeyError(tag)

    def _write_index(self, entries: list[dict[str, Any]]) -> None:
        document = {
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_INDEX,
            "manifests": entries,
        }
        self.index_path.write_bytes(canonical_json(document))


def make_layer_tar(rng: random.Random, position: int, size: int) -> bytes:
    """An uncompressed tar holding a directory and two random files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        directory = f"layer{position}"
        _add_tar_entry(tar, directory, None)
        _add_tar_entry(tar, f"{directory}/data.bin", rng.randbytes(size))
        note = f"layer {position} seed-derived {rng.getrandbits(64):x}\n"
        _add_tar_entry(tar, f"{directory}/note.txt", note.encode())
    return buffer.getvalue()


def _add_tar_entry(tar: tarfile.TarFile, name: str, data: bytes | None) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if data is None:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
        return
    info.mode = 0o644
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_config(platform: tuple[str, str], diff_ids: list[str]) -> dict[str, Any]:
    os_name, architecture = platform
    return {
        "created": FIXED_CREATED,
        "architecture": architecture,
        "os": os_name,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"],
            "Cmd": ["/bin/sh"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": FIXED_CREATED, "created_by": f"dockyard-test layer {n}"}
            for n in range(len(diff_ids))
        ],
    }


def write_image(
    root: Path,
    tag: str,
    *,
    seed: int = 0,
    layer_count: int = 3,
    layer_bytes: int = DEFAULT_LAYER_BYTES,
    platform: tuple[str, str] = DEFAULT_PLATFORMS[0],
    tagged: bool = True,
) -> Image:
    """Write a multi-layer image into the layout at `root` and tag it."""
    layout = OciLayout(root)
    rng = random.Random(f"{seed}/{platform[0]}/{platform[1]}")

    layers: list[Descriptor] = []
    diff_ids: list[str] = []
    for position in range(layer_count):
        tar_bytes = make_layer_tar(rng, position, layer_bytes)
        diff_ids.append(sha256_digest(tar_bytes))
        compressed = gzip.compress(tar_bytes, compresslevel=6, mtime=0)
        layers.append(layout.write_blob(MEDIA_TYPE_LAYER_GZIP, compressed))

    config_bytes = canonical_json(make_config(platform, diff_ids))
    config = layout.write_blob(MEDIA_TYPE_CONFIG, config_bytes)
    manifest_bytes = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "config": config.to_json(),
            "layers": [layer.to_json() for layer in layers],
        }
    )
    manifest = layout.write_blob(MEDIA_TYPE_MANIFEST, manifest_bytes)
    if tagged:
        layout.tag(manifest, tag)
    return Image(
        manifest=manifest,
        manifest_bytes=manifest_bytes,
        config=config,
        layers=tuple(layers),
        diff_ids=tuple(diff_ids),
        platform=platform,
    )


def write_multiarch_index(
    root: Path,
    tag: str,
    *,
    seed: int = 0,
    platforms: tuple[tuple[str, str], ...] = DEFAULT_PLATFORMS,
    layer_count: int = 2,
    layer_bytes: int = DEFAULT_LAYER_BYTES // 2,
) -> ImageIndex:
    """Write one image per platform plus an OCI index over them, and tag it."""
    images = tuple(
        write_image(
            root,
            tag,
            seed=seed,
            layer_count=layer_count,
            layer_bytes=layer_bytes,
            platform=platform,
            tagged=False,
        )
        for platform in platforms
    )
    index_bytes = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_INDEX,
            "manifests": [_platform_entry(image) for image in images],
        }
    )
    layout = OciLayout(root)
    index = layout.write_blob(MEDIA_TYPE_INDEX, index_bytes)
    layout.tag(index, tag)
    return ImageIndex(index=index, index_bytes=index_bytes, images=images)


def _platform_entry(image: Image) -> dict[str, Any]:
    entry = image.manifest.to_json()
    entry["platform"] = {"os": image.platform[0], "architecture": image.platform[1]}
    return entry
