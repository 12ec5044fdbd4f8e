"""RFC 9110 semantics for serving one representation: byte ranges, strong validators and
the conditional headers (``If-Match``, ``If-Unmodified-Since``, ``If-None-Match``,
``If-Modified-Since``, ``If-Range``).

Pure functions of header values and validators: no I/O and no web framework, so every
rule can be tested directly. HTTP dates are read and written by ``domain.timestamps``.

Why not Starlette's ``FileResponse`` (read in starlette 1.10): it answers a malformed
``Range`` with 400 (RFC 9110 says ignore it and send 200), answers 416 when *any* range
is out of bounds (the RFC: only when none is satisfiable), honours ``Range`` on ``HEAD``,
has no ``If-Match`` / ``If-Unmodified-Since`` / ``If-None-Match`` handling and derives
its ETag from the mtime. Subclassing would have replaced every one of those methods.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from peerdp.content.ids import is_sha256
from peerdp.domain.timestamps import http_date, parse_http_date

# RFC 9110 lets a server ignore a Range with many parts: a defence against
# request amplification with thousands of tiny ranges.
MAX_RANGES = 64
MAX_RANGE_HEADER_LEN = 4096

_RANGE_SPEC = re.compile(r"([0-9]{1,19})-([0-9]{0,19})|-([0-9]{1,19})")
_ENTITY_TAG = re.compile(r'\s*(W/)?"([^"]*)"\s*(?:,|$)')


class ByteRange(NamedTuple):
    """A satisfiable byte range; ``end`` is exclusive."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Validators:
    """The strong validators of one representation."""

    etag: str  # with its quotes, e.g. '"ab12…"'
    last_modified: datetime | None  # UTC, whole seconds

    @classmethod
    def of(cls, sha256_hex: str, last_modified: datetime | None) -> Validators:
        # The ETag is the content's SHA-256: a strong validator by construction.
        if not is_sha256(sha256_hex):
            raise ValueError("ETag source must be a lowercase SHA-256 hex digest")
        return cls(f'"{sha256_hex}"', _whole_seconds(last_modified))

    def headers(self) -> dict[str, str]:
        out = {"etag": self.etag}
        if self.last_modified is not None:
            out["last-modified"] = http_date(self.last_modified)
        return out


def parse_range(value: str, size: int) -> list[ByteRange] | None:
    """Parse a ``Range`` header against a representation of ``size`` bytes.

    Returns ``None`` when the header must be ignored (malformed, another
    unit, too many parts, empty representation): the caller sends 200.
    Returns ``[]`` when it is valid but no range is satisfiable (416).
    Otherwise the satisfiable ranges, overlapping ones coalesced.
    """
    if size <= 0 or len(value) > MAX_RANGE_HEADER_LEN:
        return None
    unit, sep, range_set = value.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    # "1#range-spec": empty list elements are allowed and skipped (RFC 9110 §5.6.1).
    specs = [s.strip(" \t") for s in range_set.split(",")]
    specs = [s for s in specs if s]
    if not specs or len(specs) > MAX_RANGES:
        return None
    ranges: list[ByteRange] = []
    for spec in specs:
        match = _RANGE_SPEC.fullmatch(spec)
        if match is None:
            return None
        first, last, suffix = match.groups()
        if suffix is not None:
            if int(suffix) > 0:  # a zero-length suffix is unsatisfiable
                ranges.append(ByteRange(max(size - int(suffix), 0), size))
            continue
        start = int(first)
        if last and int(last) < start:
            return None  # an invalid int-range makes the whole header invalid
        if start < size:
            ranges.append(ByteRange(start, min(int(last) + 1, size) if last else size))
    return coalesce_ranges(ranges)


def coalesce_ranges(ranges: Sequence[ByteRange]) -> list[ByteRange]:
    """Merge overlapping or adjacent ranges; others keep the requested order.

    RFC 9110 §14.6 allows coalescing "regardless of the order"; merging means
    a client can never make us send more bytes than the file holds.
    """
    out: list[ByteRange] = []
    for rng in ranges:
        start, end, pos = rng.start, rng.end, len(out)
        i = 0
        while i < len(out):
            other = out[i]
            if start <= other.end and other.start <= end:
                start, end = min(start, other.start), max(end, other.end)
                del out[i]
                pos = min(pos, i)
                i = 0  # the grown range may now touch an earlier one
                continue
            i += 1
        out.insert(min(pos, len(out)), ByteRange(start, end))
    return out


def _whole_seconds(when: datetime | None) -> datetime | None:
    # HTTP dates have one-second resolution; compare at that resolution.
    if when is None:
        return None
    utc = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return utc.replace(microsecond=0)


def _entity_tags(value: str) -> list[tuple[bool, str]] | None:
    """(weak, opaque-tag) pairs of an If-Match/If-None-Match list; None for "*"."""
    if value.strip() == "*":
        return None
    return [(bool(m.group(1)), m.group(2)) for m in _ENTITY_TAG.finditer(value)]


def _tag_matches(value: str, etag: str, *, strong: bool) -> bool:
    tags = _entity_tags(value)
    if tags is None:
        return True  # "*" matches any current representation
    opaque = etag.strip('"')
    return any(tag == opaque and not (strong and weak) for weak, tag in tags)


def evaluate_preconditions(
    method: str, headers: Mapping[str, str], validators: Validators
) -> int | None:
    """Status forced by the conditional headers (412 or 304), else None.

    Evaluated in the order of RFC 9110 §13.2.2.
    """
    if_match = headers.get("if-match")
    if if_match is not None:
        if not _tag_matches(if_match, validators.etag, strong=True):
            return 412
    else:
        since = parse_http_date(headers.get("if-unmodified-since"))
        modified = validators.last_modified
        if since is not None and modified is not None and modified > since:
            return 412
    safe = method in ("GET", "HEAD")
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if _tag_matches(if_none_match, validators.etag, strong=False):
            return 304 if safe else 412
    elif safe:
        since = parse_http_date(headers.get("if-modified-since"))
        modified = validators.last_modified
        if since is not None and modified is not None and modified <= since:
            return 304
    return None


def if_range_allows(value: str | None, validators: Validators) -> bool:
    """Whether ``If-Range`` (if present) lets the ``Range`` header apply."""
    if value is None:
        return True
    value = value.strip()
    if value.startswith('"') or value.startswith("W/"):
        # Strong comparison: a weak tag never matches (RFC 9110 §13.1.5).
        return value == validators.etag
    when = parse_http_date(value)
    return when is not None and when == validators.last_modified


__all__ = [
    "MAX_RANGES",
    "MAX_RANGE_HEADER_LEN",
    "ByteRange",
    "Validators",
    "coalesce_ranges",
    "evaluate_preconditions",
    "if_range_allows",
    "parse_range",
]
