"""HTTP semantics for serving package content (RFC 9110), shared by every DP.

One implementation of ranges and conditional requests, used by standard and
branch distribution points alike: ``HEAD`` metadata, ``GET`` whole (200), one
range (206 + ``Content-Range``), several ranges (206 ``multipart/byteranges``),
``416`` for unsatisfiable ranges, ``If-Range``, ``If-Match``,
``If-Unmodified-Since`` (412), ``If-None-Match`` / ``If-Modified-Since`` (304).

Why not Starlette's ``FileResponse`` (read in starlette 1.10): it answers a
malformed ``Range`` with 400 (RFC 9110 §14.2 says ignore it and send 200),
answers 416 when *any* range is out of bounds (RFC: only when none is
satisfiable), honours ``Range`` on ``HEAD``, has no ``If-Match`` /
``If-Unmodified-Since`` / ``If-None-Match`` handling, derives its ETag from the
mtime, and opens the file by path (following symlinks, and racing the stat).
Subclassing would have replaced every one of those methods, so the range and
precondition logic lives here, once, as small pure functions.

Bodies are always sent with ``Content-Length`` (never chunked) and never
content-coded. Do not wrap the content routes in ``GZipMiddleware`` without
excluding ``application/octet-stream`` and ``application/json``: it would
compress 200 answers and drop their ``Content-Length``. ``Cache-Control:
no-transform`` tells well-behaved intermediaries the same.

File bodies go out in ``DEFAULT_CHUNK_SIZE`` reads (a worker thread does each
``pread``), or, when the ASGI server offers the "Zero Copy Send" extension,
as one ``http.response.zerocopysend`` message per range so the server can
``os.sendfile`` them. uvicorn 0.54 offers neither that nor
``http.response.pathsend`` (Starlette's FileResponse uses only pathsend, for
whole files); peerdp's ``ZeroCopyHttpToolsProtocol`` in ``content_app`` adds
zerocopysend to uvicorn. bench/content.md has the measurements.

Files are opened once with ``O_NOFOLLOW`` and checked with ``fstat`` to be
regular files of the expected size; every later read uses that descriptor, so
a symlink planted in the store is never followed and nothing can be swapped in
between the check and the read.
"""

from __future__ import annotations

import contextlib
import email.utils
import os
import re
import stat
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from secrets import token_hex
from typing import NamedTuple, Protocol

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

CONTENT_TYPE = "application/octet-stream"
# Big reads amortise the per-chunk thread hop and ASGI message overhead;
# 1 MiB measured best against nginx (see bench/content.md).
DEFAULT_CHUNK_SIZE = 1024 * 1024
# RFC 9110 §14.2 lets a server ignore a Range with many parts: a defence
# against request amplification with thousands of tiny ranges.
MAX_RANGES = 64
MAX_RANGE_HEADER_LEN = 4096
CACHE_CONTROL = "private, no-transform"
# A client that accepts no chunk (<= 1 MiB) for this long is dropped, so a
# stalled-but-connected peer cannot hold a transfer slot for ever. Lenient:
# a 64 kbit/s WAN link moves a 1 MiB chunk in about 2 minutes.
DEFAULT_STALL_TIMEOUT_S = 300.0
STALL_TIMEOUT_KEY = "peerdp.stall_timeout_s"
# ASGI "Zero Copy Send" extension: when the server offers it (peerdp's
# ZeroCopyHttpToolsProtocol does), file bodies go out with os.sendfile.
ZEROCOPY_SEND = "http.response.zerocopysend"

_RANGE_SPEC = re.compile(r"([0-9]{1,19})-([0-9]{0,19})|-([0-9]{1,19})")
_ENTITY_TAG = re.compile(r'\s*(W/)?"([^"]*)"\s*(?:,|$)')
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class FileEntry:
    """A verified file in a DP's store, as the manifest describes it."""

    path_on_disk: Path
    size: int
    sha256: str
    last_modified: datetime
    # The store's trusted top directory: components below it are never
    # followed if they are symlinks. None: only the last component is checked.
    store_root: Path | None = None


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
        if not _SHA256_HEX.fullmatch(sha256_hex):
            raise ValueError("ETag source must be a lowercase SHA-256 hex digest")
        return cls(f'"{sha256_hex}"', _whole_seconds(last_modified))

    def headers(self) -> dict[str, str]:
        out = {"etag": self.etag}
        if self.last_modified is not None:
            out["last-modified"] = format_http_date(self.last_modified)
        return out


# --------------------------------------------------------------------------
# Pure parsing and evaluation
# --------------------------------------------------------------------------


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


def format_http_date(when: datetime) -> str:
    return email.utils.format_datetime(_as_utc(when), usegmt=True)


def _as_utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _whole_seconds(when: datetime | None) -> datetime | None:
    # HTTP dates have one-second resolution; compare at that resolution.
    return None if when is None else _as_utc(when).replace(microsecond=0)


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


# --------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------


class BodySource(Protocol):
    """Where a response's bytes come from."""

    async def read(self, offset: int, size: int) -> bytes: ...

    def fileno(self) -> int | None:
        """An OS file descriptor for zero-copy sending, if the body is a file."""
        ...

    def close(self) -> None: ...


class FileBody:
    """An already-open, already-checked file descriptor."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    async def read(self, offset: int, size: int) -> bytes:
        # pread in a worker thread: a cold disk must not stall the event loop.
        data = await anyio.to_thread.run_sync(os.pread, self._fd, size, offset)
        if len(data) != size:
            # Not an OSError: that would be mistaken for a client disconnect.
            raise RuntimeError("content file shrank while being served")
        return data

    def fileno(self) -> int | None:
        return self._fd if self._fd >= 0 else None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class BytesBody:
    """A small in-memory body, e.g. a manifest."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    async def read(self, offset: int, size: int) -> bytes:
        return bytes(self._data[offset : offset + size])

    def fileno(self) -> int | None:
        return None

    def close(self) -> None:
        pass


def open_regular_file(path: Path, expected_size: int, root: Path | None = None) -> int | None:
    """Open ``path`` read-only without following symlinks.

    With ``root`` (the store's trusted top directory) every component below
    it is opened with ``O_NOFOLLOW`` too, so neither a planted file symlink nor
    a planted directory symlink is followed. Returns the descriptor, or None
    when the file is missing, is not a regular file, or does not have the size
    the manifest promises (so an unverified or damaged file is never served).
    """
    try:
        fd = _open_nofollow(path, root)
    except (OSError, ValueError):
        return None  # ENOENT, ELOOP (symlink), ENOTDIR, EACCES, outside root …
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_size == expected_size:
            os.set_blocking(fd, True)
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


_NOFOLLOW_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # no FIFO hang
_NOFOLLOW_DIR = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_DIRECTORY


def _open_nofollow(path: Path, root: Path | None) -> int:
    if root is None:
        return os.open(path, _NOFOLLOW_FILE)
    parts = path.relative_to(root).parts
    if not parts or any(p in (".", "..") for p in parts):
        raise ValueError("path is not inside the store")
    dir_fd = os.open(root, os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, _NOFOLLOW_DIR, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
        return os.open(parts[-1], _NOFOLLOW_FILE, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


# --------------------------------------------------------------------------
# Transfer limiter
# --------------------------------------------------------------------------


class TransferLimiter:
    """At most ``max_transfers`` bodies in flight in this process.

    A slot is held from the first body byte until the body is fully sent or
    the client disconnects. All access happens on the event loop thread, so a
    plain counter suffices.
    """

    def __init__(self, max_transfers: int | None, retry_after_s: int = 5) -> None:
        if max_transfers is not None and max_transfers < 1:
            raise ValueError("max_transfers must be at least 1 (or None for no limit)")
        self.max_transfers = max_transfers
        self.retry_after_s = retry_after_s
        self.active = 0

    def try_acquire(self) -> bool:
        if self.max_transfers is not None and self.active >= self.max_transfers:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active -= 1

    def busy_response(self) -> Response:
        return error_response(
            503,
            f"this distribution point is already serving {self.max_transfers} transfers; "
            f"retry after {self.retry_after_s} seconds or use another distribution point",
            headers={"retry-after": str(self.retry_after_s)},
        )


def error_response(
    status: int, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """Errors are JSON ``{"detail": "..."}`` everywhere in peerdp."""
    return JSONResponse({"detail": detail}, status_code=status, headers=dict(headers or {}))


# --------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------


class _Part(NamedTuple):
    prefix: bytes  # multipart part header, or b"" for a plain body
    rng: ByteRange


class TransferStalled(Exception):
    """The client took no chunk for ``stall_timeout_s``: the transfer is dropped."""


class ContentResponse(Response):
    """A 200/206 answer streamed from a ``BodySource`` with a fixed length."""

    def __init__(
        self,
        *,
        status_code: int,
        headers: Mapping[str, str],
        body_source: BodySource,
        parts: Sequence[_Part],
        epilogue: bytes,
        send_body: bool,
        chunk_size: int,
        limiter: TransferLimiter | None,
        stall_timeout_s: float | None = None,
    ) -> None:
        super().__init__(status_code=status_code, headers=headers)
        self._source = body_source
        self._parts = tuple(parts)
        self._epilogue = epilogue
        self._send_body = send_body
        self._chunk_size = chunk_size
        self._limiter = limiter if send_body else None
        self._stall_timeout_s = stall_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if self._limiter is not None and not self._limiter.try_acquire():
                await self._limiter.busy_response()(scope, receive, send)
                return
            try:
                await send(
                    {
                        "type": "http.response.start",
                        "status": self.status_code,
                        "headers": self.raw_headers,
                    }
                )
                if self._send_body:
                    zerocopy = ZEROCOPY_SEND in (scope.get("extensions") or {})
                    await _until_disconnect(receive, lambda: self._stream(send, zerocopy))
                else:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                if self._limiter is not None:
                    self._limiter.release()
        finally:
            self._source.close()

    async def _stream(self, send: Send, zerocopy: bool) -> None:
        fd = self._source.fileno() if zerocopy else None
        # The extension wants a "file descriptor object"; this one never closes fd.
        file = None if fd is None else os.fdopen(fd, "rb", buffering=0, closefd=False)
        try:
            for part in self._parts:
                if part.prefix:
                    await self._send(send, _body_message(part.prefix))
                if file is not None:
                    # One message per range: the server applies the stall
                    # timeout to each wait for the socket (see the message).
                    message = _zerocopy_message(file, part.rng, self._stall_timeout_s)
                    await send(message)
                    continue
                for offset in range(part.rng.start, part.rng.end, self._chunk_size):
                    size = min(self._chunk_size, part.rng.end - offset)
                    # Inline read: no reference to a sent chunk outlives its send.
                    await self._send(send, _body_message(await self._source.read(offset, size)))
            await send({"type": "http.response.body", "body": self._epilogue, "more_body": False})
        except TransferStalled:
            # Returning with the body unfinished makes the server close the
            # connection; the limiter slot is released by __call__.
            return

    async def _send(self, send: Send, message: Message) -> None:
        """Send one chunk, giving up if the client takes none for the stall timeout."""
        if self._stall_timeout_s is None:
            await send(message)
            return
        with anyio.move_on_after(self._stall_timeout_s) as waited:
            await send(message)
        if waited.cancelled_caught:
            raise TransferStalled


def _body_message(chunk: bytes) -> Message:
    return {"type": "http.response.body", "body": chunk, "more_body": True}


def _zerocopy_message(file: object, rng: ByteRange, stall_timeout_s: float | None) -> Message:
    return {
        "type": ZEROCOPY_SEND,
        "file": file,
        "offset": rng.start,
        "count": rng.length,
        "more_body": True,
        # Not part of the ASGI extension (other servers ignore it): how long
        # peerdp's server may wait for the socket to accept more bytes.
        STALL_TIMEOUT_KEY: stall_timeout_s,
    }


async def _until_disconnect(receive: Receive, body: Callable[[], Awaitable[None]]) -> None:
    """Run the body coroutine, cancelling it if the client goes away.

    uvicorn (ASGI spec 2.3) silently drops ``send`` after a disconnect, so
    without this watcher an abandoned transfer would keep reading the file
    and keep its limiter slot until the end.
    """
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            message: Message = await receive()
            while message["type"] != "http.disconnect":
                message = await receive()
            group.cancel_scope.cancel()

        async def run() -> None:
            # ASGI 2.4 servers raise OSError on send after a disconnect.
            with contextlib.suppress(OSError):
                await body()
            group.cancel_scope.cancel()

        group.start_soon(watch)
        group.start_soon(run)


def _plain_headers(validators: Validators, size: int, content_type: str) -> dict[str, str]:
    return {
        "content-length": str(size),
        "content-type": content_type,
        "accept-ranges": "bytes",
        "cache-control": CACHE_CONTROL,
        "x-content-type-options": "nosniff",
        **validators.headers(),
    }


def _multipart(
    ranges: Sequence[ByteRange], size: int, content_type: str
) -> tuple[str, list[_Part], bytes]:
    """Parts of a ``multipart/byteranges`` body (RFC 9110 §14.6)."""
    boundary = token_hex(16)
    parts = [
        _Part(
            (
                f"\r\n--{boundary}\r\n"
                f"Content-Type: {content_type}\r\n"
                f"Content-Range: bytes {r.start}-{r.end - 1}/{size}\r\n\r\n"
            ).encode("latin-1"),
            r,
        )
        for r in ranges
    ]
    return boundary, parts, f"\r\n--{boundary}--\r\n".encode("latin-1")


def representation_response(
    request: Request,
    body_source: BodySource,
    size: int,
    validators: Validators,
    *,
    content_type: str = CONTENT_TYPE,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    limiter: TransferLimiter | None = None,
    stall_timeout_s: float | None = DEFAULT_STALL_TIMEOUT_S,
) -> Response:
    """The answer to a GET/HEAD of one representation; takes ownership of the source."""
    method = request.method.upper()
    status = evaluate_preconditions(method, request.headers, validators)
    if status is not None:
        body_source.close()
        if status == 304:
            return Response(
                status_code=304, headers={"cache-control": CACHE_CONTROL, **validators.headers()}
            )
        return error_response(412, "a precondition (If-Match / If-Unmodified-Since) failed")

    ranges = None
    range_header = request.headers.get("range")
    # Range is defined for GET only (RFC 9110 §14.2): HEAD always describes the whole.
    if (
        range_header is not None
        and method == "GET"
        and if_range_allows(request.headers.get("if-range"), validators)
    ):
        ranges = parse_range(range_header, size)
    if ranges is not None and not ranges:
        body_source.close()
        return error_response(
            416,
            f"no requested range is satisfiable; the content has {size} bytes",
            headers={"content-range": f"bytes */{size}", **validators.headers()},
        )

    headers = _plain_headers(validators, size, content_type)
    parts = [_Part(b"", ByteRange(0, size))]
    epilogue = b""
    status = 200
    if ranges is not None and len(ranges) == 1:
        status, parts = 206, [_Part(b"", ranges[0])]
        headers["content-range"] = f"bytes {ranges[0].start}-{ranges[0].end - 1}/{size}"
        headers["content-length"] = str(ranges[0].length)
    elif ranges is not None:
        boundary, parts, epilogue = _multipart(ranges, size, content_type)
        status = 206
        headers["content-type"] = f"multipart/byteranges; boundary={boundary}"
        total = sum(len(p.prefix) + p.rng.length for p in parts) + len(epilogue)
        headers["content-length"] = str(total)
    return ContentResponse(
        status_code=status,
        headers=headers,
        body_source=body_source,
        parts=parts,
        epilogue=epilogue,
        send_body=method == "GET" and size > 0,
        chunk_size=chunk_size,
        limiter=limiter,
        stall_timeout_s=stall_timeout_s,
    )


def file_response(
    request: Request,
    entry: FileEntry,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    limiter: TransferLimiter | None = None,
    stall_timeout_s: float | None = DEFAULT_STALL_TIMEOUT_S,
) -> Response:
    """Serve one verified store file with full RFC 9110 range/conditional semantics.

    A missing, non-regular (e.g. symlink) or wrong-size file answers 404.
    """
    fd = open_regular_file(entry.path_on_disk, entry.size, entry.store_root)
    if fd is None:
        return error_response(404, "this file is not available on this distribution point")
    try:
        validators = Validators.of(entry.sha256, entry.last_modified)
    except ValueError:
        os.close(fd)
        return error_response(404, "this file is not available on this distribution point")
    return representation_response(
        request,
        FileBody(fd),
        entry.size,
        validators,
        chunk_size=chunk_size,
        limiter=limiter,
        stall_timeout_s=stall_timeout_s,
    )


def bytes_response(
    request: Request,
    data: bytes,
    *,
    sha256_hex: str,
    last_modified: datetime | None,
    content_type: str = "application/json",
) -> Response:
    """Serve small in-memory bytes (a manifest) with the same semantics as files."""
    validators = Validators.of(sha256_hex, last_modified)
    return representation_response(
        request, BytesBody(data), len(data), validators, content_type=content_type
    )


__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_STALL_TIMEOUT_S",
    "STALL_TIMEOUT_KEY",
    "ZEROCOPY_SEND",
    "BodySource",
    "ByteRange",
    "BytesBody",
    "ContentResponse",
    "FileBody",
    "FileEntry",
    "TransferLimiter",
    "TransferStalled",
    "Validators",
    "bytes_response",
    "coalesce_ranges",
    "error_response",
    "evaluate_preconditions",
    "file_response",
    "format_http_date",
    "if_range_allows",
    "open_regular_file",
    "parse_http_date",
    "parse_range",
    "representation_response",
]
