"""Reading the bearer credential of an Authorization header."""

from __future__ import annotations

import pytest

from peerdp.security.bearer import bearer_token, bears_one_of


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def-_~+/=", "abc.def-_~+/="),
        ("bearer abc", "abc"),  # the scheme name is case-insensitive
        ("BEARER abc", "abc"),
        ("  Bearer   abc  ", "abc"),
    ],
)
def test_the_token_of_a_bearer_header(header: str, token: str) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "Basic YWxhZGRpbjpvcGVu",
        "Bearerabc",
        "abc",
    ],
)
def test_no_token_without_a_bearer_scheme_and_a_token(header: str | None) -> None:
    assert bearer_token(header) is None


def test_a_bearer_of_one_of_the_accepted_tokens() -> None:
    assert bears_one_of("Bearer metrics-secret", ["admin-secret", "metrics-secret"])
    assert not bears_one_of("Bearer metrics-secre", ["admin-secret", "metrics-secret"])
    assert not bears_one_of(None, ["admin-secret"])
    assert not bears_one_of("Basic metrics-secret", ["metrics-secret"])
    assert not bears_one_of("Bearer x", [])
    assert not bears_one_of("Bearer x", [""])  # an empty token accepts nobody
