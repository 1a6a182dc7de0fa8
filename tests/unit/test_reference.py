import pytest

from dockyard.oci.errcodes import RegistryError
from dockyard.oci.reference import validate_name, validate_tag


@pytest.mark.parametrize(
    "name", ["a", "library/ubuntu", "a/b/c", "a.b_c__d-e--f", "x" * 200]
)
def test_valid_names_pass(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "A", "a//b", "../a", "a/../b", "a/", "/a", "-a", "a_", "a___b", "x" * 256],
)
def test_invalid_names_raise_name_invalid(name: str) -> None:
    with pytest.raises(RegistryError) as caught:
        validate_name(name)
    assert caught.value.error.code == "NAME_INVALID"


@pytest.mark.parametrize("tag", ["latest", "v1.2.3", "_x", "A-b_c.d", "x" * 128])
def test_valid_tags_pass(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", ".x", "-x", "a/b", "a:b", "x" * 129])
def test_invalid_tags_raise_tag_invalid(tag: str) -> None:
    with pytest.raises(RegistryError) as caught:
        validate_tag(tag)
    assert caught.value.error.code == "TAG_INVALID"
