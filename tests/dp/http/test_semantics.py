"""RFC 9110 ranges, validators and preconditions, tested as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from peerdp.dp.http.semantics import (
    ByteRange,
    Validators,
    coalesce_ranges,
    evaluate_preconditions,
    if_range_allows,
    parse_range,
)

from ..support import CREATED_AT, LAST_MODIFIED


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-499", 1000, [(0, 500)]),
        ("bytes=500-", 1000, [(500, 1000)]),
        ("bytes=-500", 1000, [(500, 1000)]),
        ("bytes=-5000", 1000, [(0, 1000)]),
        ("bytes=0-0,-1", 1000, [(0, 1), (999, 1000)]),
        ("bytes= 0-1 , ,5-6", 1000, [(0, 2), (5, 7)]),
        ("bytes=900-999,0-9", 1000, [(900, 1000), (0, 10)]),  # request order kept
        ("bytes=0-9,10-19,5-25", 1000, [(0, 26)]),  # adjacent + overlapping merge
        ("bytes=1000-", 1000, []),
        ("bytes=-0", 1000, []),
        ("bytes=0-", 0, None),
        ("bytes=5-4", 1000, None),
        ("bytes=a-b", 1000, None),
        ("bytes=\u0661-2", 1000, None),  # non-ASCII digits are not digits here
        ("chars=0-1", 1000, None),
        ("bytes", 1000, None),
    ],
)
def test_parse_range(header: str, size: int, expected: list[tuple[int, int]] | None) -> None:
    got = parse_range(header, size)
    assert got == (None if expected is None else [ByteRange(*r) for r in expected])


def test_coalesce_cascades() -> None:
    ranges = [ByteRange(0, 10), ByteRange(20, 30), ByteRange(40, 50), ByteRange(5, 45)]
    assert coalesce_ranges(ranges) == [ByteRange(0, 50)]


LM = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
VALIDATORS = Validators.of("a" * 64, LM)


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("GET", {}, None),
        ("GET", {"if-match": '"' + "a" * 64 + '"'}, None),
        ("GET", {"if-match": 'W/"' + "a" * 64 + '"'}, 412),  # If-Match compares strongly
        ("GET", {"if-match": '"b"', "if-unmodified-since": LAST_MODIFIED}, 412),
        ("GET", {"if-match": "*", "if-unmodified-since": "Mon, 01 Jan 2001 00:00:00 GMT"}, None),
        ("GET", {"if-unmodified-since": "Mon, 01 Jan 2001 00:00:00 GMT"}, 412),
        ("HEAD", {"if-none-match": "*"}, 304),
        ("POST", {"if-none-match": "*"}, 412),
        ("GET", {"if-none-match": '"zz"', "if-modified-since": LAST_MODIFIED}, None),
        ("GET", {"if-modified-since": "Wed, 01 May 2024 12:00:01 GMT"}, 304),
    ],
)
def test_evaluate_preconditions(method: str, headers: dict[str, str], expected: int | None) -> None:
    assert evaluate_preconditions(method, headers, VALIDATORS) == expected


def test_if_range_allows() -> None:
    assert if_range_allows(None, VALIDATORS)
    assert if_range_allows('"' + "a" * 64 + '"', VALIDATORS)
    assert not if_range_allows('"' + "b" * 64 + '"', VALIDATORS)
    assert if_range_allows(LAST_MODIFIED, VALIDATORS)
    assert not if_range_allows("Wed, 01 May 2024 12:00:01 GMT", VALIDATORS)
    # Sub-second Last-Modified values compare at HTTP's one-second resolution.
    assert if_range_allows(LAST_MODIFIED, Validators.of("a" * 64, LM.replace(microsecond=5)))
    assert CREATED_AT.startswith("2024-05-01T12:00:00")
