"""The shapes of package IDs and SHA-256 object names."""

from __future__ import annotations

import hashlib
import re

import pytest

from peerdp.content.ids import PACKAGE_ID_PATTERN, SHA256_PATTERN, is_package_id, is_sha256

SHA = hashlib.sha256(b"x").hexdigest()


@pytest.mark.parametrize("value", ["PS100001", "PS1ABCDE", "ps1abcde", "AB9fFfFf", "00000000"])
def test_package_ids(value: str) -> None:
    assert is_package_id(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "PS10000",  # too short
        "PS1000001",  # too long
        "PS10000G",  # G is not a hex digit
        "P-100001",
        "PS1 0001",
        "PS100001\n",  # a pattern anchored with $ would let this through
        " PS100001",
        "../00001",
        "PS\uff1100001",  # a full-width digit: a digit to Unicode, not here
        "PS\u066100001",  # an Arabic-Indic digit
        "ÄÖÜ00001",
        None,
        100001,
        b"PS100001",
    ],
)
def test_not_package_ids(value: object) -> None:
    assert not is_package_id(value)


def test_sha256_is_64_lowercase_hex_digits() -> None:
    assert is_sha256(SHA)
    assert is_sha256("0" * 64)


@pytest.mark.parametrize(
    "value",
    [
        SHA.upper(),
        SHA[:-1],
        SHA + "0",
        SHA[:-1] + "g",
        SHA + "\n",
        "",
        None,
        SHA.encode(),
        "../" + SHA[3:],
    ],
)
def test_not_sha256(value: object) -> None:
    assert not is_sha256(value)


def test_the_patterns_embed_in_a_route_and_agree_with_the_checks() -> None:
    """The patterns carry no anchors, so routes can embed them; whole, they accept the
    same strings as the checks."""
    route = re.compile(rf"/content/({PACKAGE_ID_PATTERN})/\d+/objects/({SHA256_PATTERN})")
    found = route.fullmatch(f"/content/PS100001/3/objects/{SHA}")
    assert found is not None and found.groups() == ("PS100001", SHA)
    assert route.fullmatch(f"/content/PS10000/3/objects/{SHA}") is None
    for value in ["PS100001", "PS10000G", "PS1000011", "ps1abcde"]:
        assert (re.fullmatch(PACKAGE_ID_PATTERN, value) is not None) == is_package_id(value)
    for value in [SHA, SHA.upper(), SHA[:-1]]:
        assert (re.fullmatch(SHA256_PATTERN, value) is not None) == is_sha256(value)
