import hashlib

import pytest

from dockyard.oci.digest import Digest, is_digest
from dockyard.oci.errcodes import RegistryError


def test_parse_accepts_sha256_and_sha512() -> None:
    sha256 = "sha256:" + hashlib.sha256(b"x").hexdigest()
    sha512 = "sha512:" + hashlib.sha512(b"x").hexdigest()
    assert str(Digest.parse(sha256)) == sha256
    assert Digest.parse(sha512).algorithm == "sha512"


@pytest.mark.parametrize(
    "text",
    ["sha256:abc", "sha256:" + "A" * 64, "sha256", "nocolon", "sha256:" + "0" * 65],
)
def test_parse_rejects_malformed_digests_as_digest_invalid(text: str) -> None:
    with pytest.raises(RegistryError) as caught:
        Digest.parse(text)
    assert caught.value.error.code == "DIGEST_INVALID"
    assert caught.value.status == 400


def test_parse_rejects_unknown_algorithm_as_unsupported() -> None:
    with pytest.raises(RegistryError) as caught:
        Digest.parse("md5:" + "0" * 32)
    assert caught.value.error.code == "UNSUPPORTED"


def test_of_hashes_with_the_requested_algorithm() -> None:
    assert Digest.of(b"abc", "sha512").hex == hashlib.sha512(b"abc").hexdigest()


def test_is_digest_tells_tags_from_digests() -> None:
    assert is_digest("sha256:00")
    assert not is_digest("latest")
