"""Reading the bearer credential of an Authorization header."""

from __future__ import annotations

import pytest

from peerdp.security.bearer import bearer_token


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
