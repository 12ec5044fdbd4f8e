"""Zero-copy file bodies under uvicorn: its httptools protocol plus the ASGI
"http.response.zerocopysend" extension.

uvicorn implements neither "zerocopysend" nor "pathsend", so file bodies would be
copied twice through Python. ``ZeroCopyHttpToolsProtocol`` is uvicorn's httptools
protocol plus that extension: a DP serves with ``server_config(app)`` (or
``uvicorn.run(app, http=ZeroCopyHttpToolsProtocol)``; CLI:
``--http peerdp.dp.zerocopy:ZeroCopyHttpToolsProtocol``) and ``ContentResponse`` then
hands the open descriptor to os.sendfile, as nginx does. Everything else (status line,
headers, keep-alive, Content-Length accounting) stays uvicorn's. Without it, the same
app streams in chunks.

It reaches into uvicorn internals (``HttpToolsProtocol.on_headers_complete``,
``self.cycle``, ``RequestResponseCycle.send`` and its ``response_started``,
``response_complete``, ``chunked_encoding``, ``expected_content_length``,
``disconnected``, ``transport`` attributes), so pyproject.toml pins the uvicorn minor
it was written for and tests/dp/test_zerocopy.py fails if an upgrade moves them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from peerdp.dp.http.response import SENT_BYTES_KEY, STALL_TIMEOUT_KEY, ZEROCOPY_SEND
from peerdp.security.tls import ServerCertificate

__all__ = ["ZeroCopyHttpToolsProtocol", "server_config"]

# Bytes one connection may send before yielding to the others; like nginx's
# sendfile_max_chunk (2m). 8 MiB measurably starved concurrent downloads.
_SENDFILE_MAX = 2 * 1024 * 1024


class ZeroCopyHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1 protocol with the zero-copy send extension."""

    zerocopy_bytes_total = 0  # process-wide, for metrics and tests

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        # An upgrade request returns early and leaves an older cycle in place.
        if cycle is None or cycle.scope is not self.scope:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is None or self.transport.get_extra_info("sslcontext") is not None:
            return  # sendfile cannot write through TLS
        self.scope.setdefault("extensions", {})[ZEROCOPY_SEND] = {}
        plain_send = cycle.send

        async def send(message: Any) -> None:
            if message["type"] == ZEROCOPY_SEND:
                await _zerocopy_send(cycle, plain_send, sock.fileno(), message)
            else:
                await plain_send(message)

        setattr(cycle, "send", send)  # noqa: B010 - read by run_asgi when it starts


async def _zerocopy_send(
    cycle: RequestResponseCycle,
    plain_send: Callable[[Any], Any],
    sock_fd: int,
    message: dict[str, Any],
) -> None:
    if cycle.disconnected:
        message[SENT_BYTES_KEY] = 0
        return  # like uvicorn's own send after a disconnect
    if not cycle.response_started or cycle.response_complete or cycle.chunked_encoding:
        raise RuntimeError("zerocopysend needs a started response with a Content-Length")
    file = message["file"]
    fd = file if isinstance(file, int) else file.fileno()
    offset = message.get("offset")
    offset = os.lseek(fd, 0, os.SEEK_CUR) if offset is None else int(offset)
    count = message.get("count")
    count = os.fstat(fd).st_size - offset if count is None else int(count)
    if count > cycle.expected_content_length:
        raise RuntimeError("Response content longer than Content-Length")
    if cycle.scope["method"] != "HEAD":
        progress = [0]
        try:
            stall = message.get(STALL_TIMEOUT_KEY)
            await _flush_transport(cycle)
            await _sendfile_all(sock_fd, fd, offset, count, stall, progress)
        except (BrokenPipeError, ConnectionError, TimeoutError):
            # Gone, or stalled past the timeout: drop the connection (the
            # response cannot be completed) and let the app finish.
            message[SENT_BYTES_KEY] = progress[0]
            cycle.disconnected = True
            cycle.transport.close()
            return
        message[SENT_BYTES_KEY] = count
    ZeroCopyHttpToolsProtocol.zerocopy_bytes_total += count
    cycle.expected_content_length -= count
    if not message.get("more_body", False):
        await plain_send({"type": "http.response.body", "body": b"", "more_body": False})


async def _flush_transport(cycle: RequestResponseCycle) -> None:
    """Wait until bytes queued in the transport (headers, part headers) are out."""
    while cycle.transport.get_write_buffer_size() > 0:
        if cycle.disconnected:
            raise ConnectionResetError("client went away")
        await asyncio.sleep(0.001)


async def _sendfile_all(
    sock_fd: int,
    fd: int,
    offset: int,
    count: int,
    stall_timeout_s: float | None = None,
    progress: list[int] | None = None,
) -> None:
    """os.sendfile the whole range onto the non-blocking socket; `progress[0]` counts the
    bytes sent, so a cut transfer knows how far it got.

    Sends until the socket is full, then waits for it to drain (TimeoutError
    if it accepts nothing for ``stall_timeout_s``). Yields to the
    loop at least once per call and every _SENDFILE_MAX bytes, so a fast
    reader cannot starve the other connections.
    """
    loop = asyncio.get_running_loop()
    # The loop already watches sock_fd for the transport; a dup gets its own watch.
    waiter_fd = -1
    yielded, unyielded = False, 0
    try:
        while count > 0:
            try:
                sent = os.sendfile(sock_fd, fd, offset, min(count, _SENDFILE_MAX))
            except BlockingIOError:
                sent = -1
            if sent == 0:
                raise RuntimeError("content file shrank while being served")
            if sent > 0:
                offset, count, unyielded = offset + sent, count - sent, unyielded + sent
                if progress is not None:
                    progress[0] += sent
                if unyielded >= _SENDFILE_MAX:
                    yielded, unyielded = True, 0
                    await asyncio.sleep(0)
                continue
            if waiter_fd < 0:
                waiter_fd = os.dup(sock_fd)
            yielded, unyielded = True, 0
            async with asyncio.timeout(stall_timeout_s):
                await _writable(loop, waiter_fd)
        if not yielded:
            await asyncio.sleep(0)
    finally:
        if waiter_fd >= 0:
            os.close(waiter_fd)


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_writer(fd)


def server_config(app: Any, certificate: ServerCertificate | None = None) -> Any:
    """The uvicorn configuration every DP serves with: zero-copy file bodies (sendfile).

    With a `certificate` it serves HTTPS through
    uvicorn's plain httptools protocol instead: sendfile would put the file's bytes on the
    socket unencrypted, so file bodies take the streaming path (they are read and
    encrypted in user space, as by any TLS server without kernel TLS).
    """
    import uvicorn

    return uvicorn.Config(
        app,
        http=ZeroCopyHttpToolsProtocol if certificate is None else "httptools",
        log_level="warning",
        log_config=None,  # uvicorn's records go through peerdp.logs like every other
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
        **(certificate.uvicorn_options() if certificate is not None else {}),
    )
