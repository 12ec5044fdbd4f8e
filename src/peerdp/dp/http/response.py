"""The ASGI answer to a GET or HEAD of package content, shared by every DP.

``representation_response`` applies the RFC 9110 rules of ``semantics`` to one
representation: ``HEAD`` metadata, ``GET`` whole (200), one range (206 +
``Content-Range``), several ranges (206 ``multipart/byteranges``), ``416`` for
unsatisfiable ranges, 412 and 304 for the conditional headers. ``ContentResponse``
then streams the body, holding a ``TransferLimiter`` slot while it does.

Bodies are always sent with ``Content-Length`` (never chunked) and never
content-coded. Do not wrap the content routes in ``GZipMiddleware`` without
excluding ``application/octet-stream`` and ``application/json``: it would
compress 200 answers and drop their ``Content-Length``. ``Cache-Control:
no-transform`` tells well-behaved intermediaries the same.

File bodies go out in ``DEFAULT_CHUNK_SIZE`` reads (a worker thread does each
``pread``), or, when the ASGI server offers the "Zero Copy Send" extension,
as one ``http.response.zerocopysend`` message per range so the server can
``os.sendfile`` them. uvicorn offers neither that nor ``http.response.pathsend``
(Starlette's FileResponse uses only pathsend, for whole files); peerdp's
``ZeroCopyHttpToolsProtocol`` in ``dp.zerocopy`` adds zerocopysend to uvicorn.
bench/content.md has the measurements.

A ``ContentResponse`` counts the body bytes it got out and, once it is done (sent, cut or
refused busy), tells its ``on_done(status, bytes_sent)`` once: a DP's metrics count per
response, never per chunk, so the sendfile path keeps its speed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from secrets import token_hex
from typing import NamedTuple

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from peerdp.dp.http.bodies import BodySource, BytesBody, FileBody, open_regular_file
from peerdp.dp.http.semantics import (
    ByteRange,
    Validators,
    evaluate_preconditions,
    if_range_allows,
    parse_range,
)
from peerdp.dp.source import FileEntry

CONTENT_TYPE = "application/octet-stream"
# Big reads amortise the per-chunk thread hop and ASGI message overhead;
# 1 MiB measured best against nginx (see bench/content.md).
DEFAULT_CHUNK_SIZE = 1024 * 1024
# Under TLS every stream holds its piece and OpenSSL's encrypted copy of it: 512 KiB kept
# 50 concurrent downloads at 137 MiB peak RSS (1 MiB: about 190) for the speed of 1 MiB
# against nginx; 256 KiB cost half as much CPU again (see bench/content.md).
TLS_CHUNK_SIZE = 512 * 1024
CACHE_CONTROL = "private, no-transform"
# A client that accepts no chunk (<= 1 MiB) for this long is dropped, so a
# stalled-but-connected peer cannot hold a transfer slot for ever. Lenient:
# a 64 kbit/s WAN link moves a 1 MiB chunk in about 2 minutes.
DEFAULT_STALL_TIMEOUT_S = 300.0
STALL_TIMEOUT_KEY = "peerdp.stall_timeout_s"
# ASGI "Zero Copy Send" extension: when the server offers it (peerdp's
# ZeroCopyHttpToolsProtocol does), file bodies go out with os.sendfile.
ZEROCOPY_SEND = "http.response.zerocopysend"
# Set by peerdp's server in a zerocopysend message once it is handled: the bytes it sent
# (fewer than `count` when the client went away). Other servers leave it unset.
SENT_BYTES_KEY = "peerdp.sent_bytes"

OnDone = Callable[[int, int], None]
"""Called once a content answer is over: (status sent, body bytes sent)."""

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
        self.on_done: OnDone | None = None
        self.bytes_sent = 0
        self._source = body_source
        self._parts = tuple(parts)
        self._epilogue = epilogue
        self._send_body = send_body
        self._chunk_size = chunk_size
        self._limiter = limiter if send_body else None
        self._stall_timeout_s = stall_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = self.status_code
        try:
            if self._limiter is not None and not self._limiter.try_acquire():
                status = 503
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
            if self.on_done is not None:
                self.on_done(status, self.bytes_sent)

    async def _stream(self, send: Send, zerocopy: bool) -> None:
        fd = self._source.fileno() if zerocopy else None
        # The extension wants a "file descriptor object"; this one never closes fd.
        file = None if fd is None else os.fdopen(fd, "rb", buffering=0, closefd=False)
        try:
            for part in self._parts:
                if part.prefix:
                    await self._send(send, _body_message(part.prefix))
                    self.bytes_sent += len(part.prefix)
                if file is not None:
                    # One message per range: the server applies the stall
                    # timeout to each wait for the socket (see the message).
                    message = _zerocopy_message(file, part.rng, self._stall_timeout_s)
                    await send(message)
                    self.bytes_sent += message.get(SENT_BYTES_KEY, part.rng.length)
                    continue
                for offset in range(part.rng.start, part.rng.end, self._chunk_size):
                    size = min(self._chunk_size, part.rng.end - offset)
                    # Inline read: no reference to a sent chunk outlives its send.
                    await self._send(send, _body_message(await self._source.read(offset, size)))
                    self.bytes_sent += size
            await send({"type": "http.response.body", "body": self._epilogue, "more_body": False})
            self.bytes_sent += len(self._epilogue)
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
    "SENT_BYTES_KEY",
    "STALL_TIMEOUT_KEY",
    "ZEROCOPY_SEND",
    "ContentResponse",
    "OnDone",
    "TransferLimiter",
    "TransferStalled",
    "bytes_response",
    "error_response",
    "file_response",
    "representation_response",
]
