"""RFC 3339 and HTTP-date: one writer and one reader of each."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from peerdp.domain.timestamps import (
    http_date,
    parse_http_date,
    parse_rfc3339,
    retry_after_s,
    rfc3339,
    rfc3339_now,
)

MOMENT = datetime(2026, 11, 28, 13, 35, 51, tzinfo=UTC)  # a Saturday
PLUS_ONE = timezone(timedelta(hours=1))
WHOLE_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def local_time_not_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A local time zone away from UTC, so that reading a naive moment as local time shows."""
    monkeypatch.setenv("TZ", "EST+5")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# -- RFC 3339 -----------------------------------------------------------------------------


def test_rfc3339_writes_utc_with_a_z() -> None:
    assert rfc3339(MOMENT) == "2026-11-28T13:35:51Z"
    assert rfc3339(datetime(2026, 11, 28, 14, 35, 51, tzinfo=PLUS_ONE)) == "2026-11-28T13:35:51Z"


@pytest.mark.usefixtures("local_time_not_utc")
def test_a_naive_moment_is_taken_as_utc() -> None:
    assert rfc3339(datetime(2026, 11, 28, 13, 35, 51)) == "2026-11-28T13:35:51Z"
    assert rfc3339(datetime(2026, 11, 28, 13, 35, 51, 5), fraction=True).endswith("51.000005Z")
    assert http_date(datetime(2026, 11, 28, 13, 35, 51)) == "Sat, 28 Nov 2026 13:35:51 GMT"
    assert parse_rfc3339("2026-11-28T13:35:51") == MOMENT


def test_fractional_seconds_only_when_asked() -> None:
    moment = MOMENT.replace(microsecond=123_456)
    assert rfc3339(moment) == "2026-11-28T13:35:51Z"
    assert rfc3339(moment, fraction=True) == "2026-11-28T13:35:51.123456Z"
    assert rfc3339(moment.astimezone(PLUS_ONE), fraction=True) == "2026-11-28T13:35:51.123456Z"


def test_a_whole_second_keeps_its_fraction_so_text_order_is_time_order() -> None:
    whole, after = MOMENT, MOMENT.replace(microsecond=1)
    assert rfc3339(whole, fraction=True) == "2026-11-28T13:35:51.000000Z"
    assert rfc3339(whole, fraction=True) < rfc3339(after, fraction=True)


@pytest.mark.parametrize("microsecond", [0, 1, 500_000, 999_999])
def test_rfc3339_round_trips(microsecond: int) -> None:
    moment = MOMENT.replace(microsecond=microsecond)
    assert parse_rfc3339(rfc3339(moment, fraction=True)) == moment
    assert parse_rfc3339(rfc3339(moment)) == MOMENT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-28T13:35:51Z", MOMENT),
        ("  2026-11-28T13:35:51Z\n", MOMENT),
        ("2026-11-28T14:35:51+01:00", MOMENT),
        ("2026-11-28T13:35:51.5Z", MOMENT.replace(microsecond=500_000)),
        ("2026-11-28T13:35:51.123456Z", MOMENT.replace(microsecond=123_456)),
        ("2026-11-28T13:35:51", MOMENT),  # no offset: UTC
    ],
)
def test_parse_rfc3339(text: str, expected: datetime) -> None:
    parsed = parse_rfc3339(text)
    assert parsed == expected
    assert parsed.tzinfo is not None


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2026-13-01T00:00:00Z", "2026-11-28T25:00:00Z", "28/11/2026"]
)
def test_parse_rfc3339_refuses_what_is_not_a_timestamp(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(text)


def test_rfc3339_now() -> None:
    before = datetime.now(UTC)
    precise = parse_rfc3339(rfc3339_now())
    whole = rfc3339_now(fraction=False)
    after = datetime.now(UTC)
    assert before - timedelta(seconds=1) <= precise <= after
    assert WHOLE_SECONDS.match(whole)
    assert before - timedelta(seconds=1) <= parse_rfc3339(whole) <= after


# -- HTTP-date ----------------------------------------------------------------------------


def test_http_date_is_an_imf_fixdate_in_gmt() -> None:
    assert http_date(MOMENT) == "Sat, 28 Nov 2026 13:35:51 GMT"
    assert http_date(MOMENT.astimezone(PLUS_ONE)) == "Sat, 28 Nov 2026 13:35:51 GMT"


@pytest.mark.parametrize(
    "value",
    [
        "Sat, 28 Nov 2026 13:35:51 GMT",  # IMF-fixdate
        " Sat, 28 Nov 2026 13:35:51 GMT ",
        "Saturday, 28-Nov-26 13:35:51 GMT",  # obsolete RFC 850 form, still to be accepted
        "Sat Nov 28 13:35:51 2026",  # obsolete asctime form
        "Sat, 28 Nov 2026 14:35:51 +0100",  # not HTTP, but read as the same instant, in UTC
    ],
)
def test_parse_http_date_reads_every_form_a_recipient_must_accept(value: str) -> None:
    parsed = parse_http_date(value)
    assert parsed == MOMENT
    assert parsed is not None and parsed.utcoffset() == timedelta(0)


def test_http_date_round_trips_to_the_second() -> None:
    assert parse_http_date(http_date(MOMENT.replace(microsecond=999_999))) == MOMENT


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "garbage",
        "1",
        "Sat, 31 Feb 2026 13:35:51 GMT",
        "Sat, 28 Nov 2026 25:00:00 GMT",
    ],
)
def test_parse_http_date_gives_none_for_absent_or_invalid(value: str | None) -> None:
    assert parse_http_date(value) is None


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s("120", now) == 120.0
    assert retry_after_s(" 7 ", now) == 7.0
    assert retry_after_s("Wed, 01 May 2024 12:01:30 GMT", now) == 90.0
    assert retry_after_s("Wed, 01 May 2024 11:00:00 GMT", now) == 0.0  # already past
    assert retry_after_s(None, now) is None
    assert retry_after_s("soon", now) is None
    assert retry_after_s("-5", now) is None
