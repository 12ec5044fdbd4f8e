"""Times and durations as an administrator types them: `2h`, `1d12h`, `now`, `2024-05-01 08:00`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import typer

from peerdp.domain.timestamps import rfc3339

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(?:\d+[smhdw])+")
_PART = re.compile(r"(\d+)([smhdw])")


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `2h`, `1d12h`, `1w`: a positive duration, else a usage error."""
    cleaned = text.strip().lower()
    if not _DURATION.fullmatch(cleaned):
        raise typer.BadParameter(f"{text!r} is not a duration like 30m, 2h, 1d or 1d12h")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(cleaned))
    if seconds <= 0:
        raise typer.BadParameter("the duration must be longer than zero")
    return timedelta(seconds=seconds)


def parse_time(text: str, *, durations_ago: bool = False) -> datetime:
    """`now`, an ISO date/time (local time unless it names a zone) or a duration.

    A bare duration counts from now: forward (`2h` = in two hours), or back with
    `durations_ago` (for filters like `--since 2h`). `+2h` and `-2h` name the direction.
    """
    cleaned = text.strip()
    now = datetime.now(UTC)
    if cleaned.lower() == "now":
        return now
    sign = -1 if durations_ago else 1
    if cleaned[:1] in "+-" and cleaned[1:2].isdigit():
        sign = -1 if cleaned[0] == "-" else 1
        cleaned = cleaned[1:]
    if _DURATION.fullmatch(cleaned.lower()):
        return now + sign * parse_duration(cleaned)
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        duration = "2h (the last two hours)" if durations_ago else "2h (two hours from now)"
        raise typer.BadParameter(
            f"{text!r} is not a time: use now, {duration}, or 2024-05-01T08:00 (local time)"
        ) from None
    return moment.astimezone(UTC)


def api_time(text: str | None, *, durations_ago: bool = False) -> str | None:
    """An optional time option as the API's RFC 3339 UTC string."""
    if text is None:
        return None
    return rfc3339(parse_time(text, durations_ago=durations_ago))
