"""The two ways peerdp writes a moment in time: RFC 3339 (JSON bodies, status messages,
manifests, policies) and the HTTP-date of RFC 9110 (Last-Modified, If-Unmodified-Since,
Retry-After). One reader and one writer of each, so every role agrees on the format.

Pure code: standard library only.
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime


def rfc3339(moment: datetime, *, fraction: bool = False) -> str:
    """``moment`` in UTC as ``2026-11-28T13:35:51Z`` (with microseconds if ``fraction``).

    A naive ``moment`` is taken to be UTC already.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if fraction:
        # Always six digits: a whole second written without them would sort after its
        # own microseconds as text.
        return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_now(*, fraction: bool = True) -> str:
    """Now, in RFC 3339; to the microsecond by default, so messages keep their order."""
    return rfc3339(datetime.now(UTC), fraction=fraction)


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 / ISO 8601 timestamp as an aware datetime (UTC if it names no offset).

    Raises ``ValueError`` for text that is not a timestamp.
    """
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def http_date(moment: datetime) -> str:
    """``moment`` as an IMF-fixdate (``Sat, 28 Nov 2026 13:35:51 GMT``)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP-date as an aware UTC datetime, or None if absent or invalid."""
    if value is None:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """A Retry-After header as seconds from `now`: delta-seconds (`120`) or an HTTP-date
    (a date already past is 0); None if absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    moment = parse_http_date(text)
    if moment is None:
        return None
    return max(0.0, (moment - now).total_seconds())
