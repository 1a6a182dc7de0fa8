"""Content discovery: tag lists, the catalog and the referrers API."""

from __future__ import annotations

import httpx
import pytest

from tests.support.registry_client import (
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Blob,
    Manifest,
    RegistryClient,
    assert_error,
    config_blob,
    digest_of,
    image_index,
    image_manifest,
    random_blob,
    unique_repository,
)
from tests.support.server import RegistryServer

TYPE_A = "application/vnd.example.peanut.butter"
TYPE_B = "application/vnd.example.strawberry.jam"
TYPE_INDEX = "application/vnd.example.lunch.box"
NOTE = "org.example.note"


def _tag_all(oci: RegistryClient, repo: str, tags: list[str]) -> None:
    manifest = oci.push_image(repo, tags[0])
    for tag in tags[1:]:
        oci.push_manifest(repo, tag, manifest)


# -- tag lists ---------------------------------------------------------------


def test_tags_are_listed_in_lexical_order(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    tags = ["b", "a", "C", "10", "9", "a-1", "a.1", "_x", "latest"]
    _tag_all(oci, repo, tags)

    response = client.get(f"/v2/{repo}/tags/list")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"name": repo, "tags": sorted(tags)}
    assert "link" not in response.headers


def test_tags_paginate_with_n_and_last(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    _tag_all(oci, repo, ["e", "c", "a", "d", "b"])

    first = client.get(f"/v2/{repo}/tags/list", params={"n": 2})
    assert first.json()["tags"] == ["a", "b"]
    assert first.headers["link"] == f'</v2/{repo}/tags/list?n=2&last=b>; rel="next"'

    second = client.get(f"/v2/{repo}/tags/list", params={"n": 2, "last": "b"})
    assert second.json()["tags"] == ["c", "d"]
    assert second.headers["link"] == f'</v2/{repo}/tags/list?n=2&last=d>; rel="next"'

    third = client.get(f"/v2/{repo}/tags/list", params={"n": 2, "last": "d"})
    assert third.json()["tags"] == ["e"]
    assert "link" not in third.headers


def test_tags_link_is_followable(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    tags = [f"t{number:02d}" for number in range(7)]
    _tag_all(oci, repo, tags)

    seen: list[str] = []
    url: str | None = f"/v2/{repo}/tags/list?n=3"
    while url is not None:
        response = client.get(url)
        assert response.status_code == 200
        seen.extend(response.json()["tags"])
        link = response.headers.get("link")
        url = link[1 : link.index(">")] if link else None

    assert seen == tags


def test_tags_last_is_exclusive_and_need_not_be_a_tag(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    _tag_all(oci, repo, ["a", "b", "c", "d"])

    response = client.get(f"/v2/{repo}/tags/list", params={"last": "b0"})

    assert response.json()["tags"] == ["c", "d"]


def test_tags_with_n_larger_than_the_list_has_no_link(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    _tag_all(oci, repo, ["a", "b"])

    response = client.get(f"/v2/{repo}/tags/list", params={"n": 2})

    assert response.json()["tags"] == ["a", "b"]
    assert "link" not in response.headers


def test_tags_n_zero_returns_empty_list_without_link(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    _tag_all(oci, repo, ["a", "b"])

    response = client.get(f"/v2/{repo}/tags/list", params={"n": 0})

    assert response.status_code == 200
    assert response.json() == {"name": repo, "tags": []}
    assert "link" not in response.headers


@pytest.mark.parametrize("n", ["abc", "-1", "1.5"])
def test_tags_invalid_n_returns_400(
    client: httpx.Client, oci: RegistryClient, repo: str, n: str
) -> None:
    _tag_all(oci, repo, ["a"])

    response = client.get(f"/v2/{repo}/tags/list", params={"n": n})

    assert_error(response, 400)


def test_tags_of_unknown_repository_returns_404_name_unknown(
    client: httpx.Client, repo: str
) -> None:
    response = client.get(f"/v2/{repo}/tags/list")

    assert_error(response, 404, "NAME_UNKNOWN")


# -- catalog -----------------------------------------------------------------


def test_catalog_lists_repositories_in_order_with_pagination(
    fresh_registry: RegistryServer,
) -> None:
    names = ["gamma/one", "alpha", "beta"]
    with httpx.Client(base_url=fresh_registry.url, timeout=30.0) as http:
        oci = RegistryClient(http)
        for name in names:
            oci.push_blob(name, random_blob(16))

        full = http.get("/v2/_catalog")
        first = http.get("/v2/_catalog", params={"n": 2})
        second = http.get("/v2/_catalog", params={"n": 2, "last": "beta"})
        empty = http.get("/v2/_catalog", params={"n": 0})

    assert full.status_code == 200
    assert full.json() == {"repositories": sorted(names)}
    assert first.json() == {"repositories": ["alpha", "beta"]}
    assert first.headers["link"] == '</v2/_catalog?n=2&last=beta>; rel="next"'
    assert second.json() == {"repositories": ["gamma/one"]}
    assert "link" not in second.headers
    assert empty.json() == {"repositories": []}
    assert "link" not in empty.headers


def test_catalog_invalid_n_returns_400(client: httpx.Client) -> None:
    response = client.get("/v2/_catalog", params={"n": "lots"})

    assert_error(response, 400)


# -- referrers ---------------------------------------------------------------


def _push_artifact(
    oci: RegistryClient,
    repo: str,
    subject: Manifest,
    *,
    config_type: str | None = None,
    artifact_type: str | None = None,
    note: str | None = None,
) -> tuple[Manifest, httpx.Response]:
    """An artifact manifest that refers to `subject`, pushed by digest.

    Without `config_type`, the config is the empty descriptor and the type lives
    in `artifactType`, the way current clients write artifacts.
    """
    if config_type is None:
        config = Blob(b"{}", OCI_EMPTY)
        layer = random_blob(64, artifact_type or "application/octet-stream")
    else:
        config = Blob(random_blob(64).data, config_type)
        layer = Blob(b"{}", OCI_EMPTY)
    oci.push_blob(repo, config)
    oci.push_blob(repo, layer)
    manifest = image_manifest(
        config,
        [layer],
        subject=subject,
        artifact_type=artifact_type,
        annotations={NOTE: note} if note else None,
    )
    response = oci.push_manifest(repo, manifest.digest, manifest)
    return manifest, response


def _referrers(
    client: httpx.Client, repo: str, digest: str, **params: str
) -> httpx.Response:
    response = client.get(f"/v2/{repo}/referrers/{digest}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == OCI_INDEX
    body = response.json()
    assert body["schemaVersion"] == 2
    assert body["mediaType"] == OCI_INDEX
    return response


def _by_digest(response: httpx.Response) -> dict[str, dict[str, object]]:
    return {entry["digest"]: entry for entry in response.json()["manifests"]}


def test_referrers_of_unknown_subject_is_an_empty_index(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    oci.push_image(repo, "v1")

    response = _referrers(client, repo, digest_of(b"nothing refers to this"))

    assert response.json()["manifests"] == []


def test_referrers_of_unknown_repository_is_an_empty_index(
    client: httpx.Client, repo: str
) -> None:
    response = _referrers(client, repo, digest_of(b"no repository either"))

    assert response.json()["manifests"] == []


def test_manifest_with_subject_answers_oci_subject_and_is_listed(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    subject = oci.push_image(repo, "v1")

    by_config, pushed_a = _push_artifact(
        oci, repo, subject, config_type=TYPE_A, note="config a"
    )
    by_field, pushed_b = _push_artifact(
        oci, repo, subject, artifact_type=TYPE_B, note="layer b"
    )
    child = oci.push_image(repo)
    index = image_index(
        [child], subject=subject, artifact_type=TYPE_INDEX, annotations={NOTE: "i"}
    )
    pushed_index = oci.push_manifest(repo, index.digest, index)

    for pushed in (pushed_a, pushed_b, pushed_index):
        assert pushed.headers["oci-subject"] == subject.digest
    entries = _by_digest(_referrers(client, repo, subject.digest))
    assert entries == {
        by_config.digest: {
            "mediaType": OCI_MANIFEST,
            "digest": by_config.digest,
            "size": by_config.size,
            "artifactType": TYPE_A,
            "annotations": {NOTE: "config a"},
        },
        by_field.digest: {
            "mediaType": OCI_MANIFEST,
            "digest": by_field.digest,
            "size": by_field.size,
            "artifactType": TYPE_B,
            "annotations": {NOTE: "layer b"},
        },
        index.digest: {
            "mediaType": OCI_INDEX,
            "digest": index.digest,
            "size": index.size,
            "artifactType": TYPE_INDEX,
            "annotations": {NOTE: "i"},
        },
    }


def test_manifest_without_subject_has_no_oci_subject_header(
    oci: RegistryClient, repo: str
) -> None:
    config = config_blob()
    oci.push_blob(repo, config)

    response = oci.push_manifest(repo, "plain", image_manifest(config, []))

    assert "oci-subject" not in response.headers


def test_referrers_filter_by_artifact_type(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    subject = oci.push_image(repo, "v1")
    a_config, _ = _push_artifact(oci, repo, subject, config_type=TYPE_A)
    a_field, _ = _push_artifact(oci, repo, subject, artifact_type=TYPE_A)
    _push_artifact(oci, repo, subject, artifact_type=TYPE_B)

    response = _referrers(client, repo, subject.digest, artifactType=TYPE_A)

    assert response.headers["oci-filters-applied"] == "artifactType"
    assert set(_by_digest(response)) == {a_config.digest, a_field.digest}
    assert all(e["artifactType"] == TYPE_A for e in response.json()["manifests"])


def test_referrers_filter_matching_nothing_is_empty(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    subject = oci.push_image(repo, "v1")
    _push_artifact(oci, repo, subject, artifact_type=TYPE_A)

    response = _referrers(client, repo, subject.digest, artifactType="x/none")

    assert response.headers["oci-filters-applied"] == "artifactType"
    assert response.json()["manifests"] == []


def test_manifest_with_missing_subject_is_accepted_and_listed(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    absent = image_manifest(config_blob(), [random_blob(8)])

    artifact, pushed = _push_artifact(oci, repo, absent, artifact_type=TYPE_B)

    assert pushed.headers["oci-subject"] == absent.digest
    entries = _by_digest(_referrers(client, repo, absent.digest))
    assert list(entries) == [artifact.digest]


def test_referrers_to_an_index_subject(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    index = image_index([oci.push_image(repo), oci.push_image(repo)])
    oci.push_manifest(repo, "multi", index)

    artifact, pushed = _push_artifact(oci, repo, index, artifact_type=TYPE_A)

    assert pushed.headers["oci-subject"] == index.digest
    entries = _by_digest(_referrers(client, repo, index.digest))
    assert entries[artifact.digest]["artifactType"] == TYPE_A
    assert list(entries) == [artifact.digest]


def test_deleted_referrer_leaves_the_list(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    subject = oci.push_image(repo, "v1")
    kept, _ = _push_artifact(oci, repo, subject, artifact_type=TYPE_A)
    dropped, _ = _push_artifact(oci, repo, subject, artifact_type=TYPE_B)

    deleted = client.delete(f"/v2/{repo}/manifests/{dropped.digest}")

    assert deleted.status_code == 202
    assert list(_by_digest(_referrers(client, repo, subject.digest))) == [kept.digest]


def test_referrers_are_scoped_to_the_repository(
    client: httpx.Client, oci: RegistryClient, repo: str
) -> None:
    subject = oci.push_image(repo, "v1")
    other = unique_repository()
    here, _ = _push_artifact(oci, repo, subject, artifact_type=TYPE_A)
    there, _ = _push_artifact(oci, other, subject, artifact_type=TYPE_A)

    assert list(_by_digest(_referrers(client, repo, subject.digest))) == [here.digest]
    assert list(_by_digest(_referrers(client, other, subject.digest))) == [there.digest]


def test_referrers_with_malformed_digest_returns_400(
    client: httpx.Client, repo: str
) -> None:
    response = client.get(f"/v2/{repo}/referrers/sha256:short")

    assert_error(response, 400, "DIGEST_INVALID")
