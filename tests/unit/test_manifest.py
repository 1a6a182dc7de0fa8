import json
from typing import Any

import pytest

from dockyard.oci import mediatypes
from dockyard.oci.errcodes import RegistryError
from dockyard.oci.manifest import MAX_MANIFEST_BYTES, parse

CONFIG = {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "digest": "sha256:" + "a" * 64,
    "size": 10,
}
LAYER = {
    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
    "digest": "sha256:" + "b" * 64,
    "size": 20,
}


def _image(**extra: Any) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": CONFIG,
        "layers": [LAYER],
        **extra,
    }
    return json.dumps(document).encode()


def test_image_manifest_lists_config_and_layers() -> None:
    parsed = parse(_image(), mediatypes.OCI_MANIFEST)
    assert [d.digest for d in parsed.blobs] == [CONFIG["digest"], LAYER["digest"]]
    assert parsed.artifact_type == CONFIG["mediaType"]
    assert not parsed.is_index


def test_artifact_type_field_wins_over_config_media_type() -> None:
    parsed = parse(_image(artifactType="application/x-sbom"), None)
    assert parsed.artifact_type == "application/x-sbom"


def test_subject_and_annotations_are_kept() -> None:
    subject = {**CONFIG, "mediaType": mediatypes.OCI_MANIFEST}
    parsed = parse(_image(subject=subject, annotations={"k": "v"}), None)
    assert parsed.subject == CONFIG["digest"]
    assert parsed.annotations == {"k": "v"}


def test_index_lists_children() -> None:
    child = {**CONFIG, "mediaType": mediatypes.OCI_MANIFEST}
    body = json.dumps(
        {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": [child]}
    ).encode()
    parsed = parse(body, mediatypes.OCI_INDEX)
    assert parsed.is_index
    assert [d.digest for d in parsed.children] == [child["digest"]]


def test_media_type_must_match_content_type() -> None:
    with pytest.raises(RegistryError) as caught:
        parse(_image(), mediatypes.DOCKER_MANIFEST)
    assert caught.value.error.code == "MANIFEST_INVALID"


def test_content_type_parameters_are_ignored() -> None:
    parse(_image(), f"{mediatypes.OCI_MANIFEST}; charset=utf-8")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps({"schemaVersion": 1}).encode(),
        json.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST}).encode(),
        _image(layers=[{"digest": "sha256:bad", "size": 1, "mediaType": "x"}]),
        _image(layers=[{**LAYER, "size": -1}]),
    ],
)
def test_malformed_manifests_raise_manifest_invalid(body: bytes) -> None:
    with pytest.raises(RegistryError) as caught:
        parse(body, None)
    assert caught.value.error.code == "MANIFEST_INVALID"
    assert caught.value.status == 400


def test_oversized_manifest_is_413() -> None:
    with pytest.raises(RegistryError) as caught:
        parse(b" " * (MAX_MANIFEST_BYTES + 1), None)
    assert caught.value.status == 413


def test_foreign_layers_are_external() -> None:
    foreign = {
        **LAYER,
        "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    }
    parsed = parse(_image(layers=[foreign]), None)
    assert parsed.blobs[1].is_external
