"""The ``/content`` routes every distribution point serves (API.md, DESIGN §4).

    HEAD/GET /content/{package_id}/{source_version}/manifest
    HEAD/GET /content/{package_id}/{source_version}/files/{path}

A DP plugs its store in through the small ``ContentSource`` protocol and mounts
the router::

    service = ContentService(store, site_public_key, max_transfers=10,
                             extra_auth=my_credentials.is_valid)
    app.include_router(service.router())
    uvicorn.run(app, http=ZeroCopyHttpToolsProtocol)   # file bodies via os.sendfile

Every lookup goes through the manifest: the URL path is only a key into the
manifest's file list and is never joined onto a filesystem path.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from peerdp.dp.http.response import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_STALL_TIMEOUT_S,
    STALL_TIMEOUT_KEY,
    ZEROCOPY_SEND,
    TransferLimiter,
    bytes_response,
    error_response,
    file_response,
)
from peerdp.dp.source import ContentSource, FileEntry
from peerdp.security.signing import SignatureError, SitePublicKey

__all__ = [
    "ContentService",
    "ContentSource",
    "DirectoryContentSource",
    "ExtraAuth",
    "FileEntry",
    "ZeroCopyHttpToolsProtocol",
    "create_content_app",
    "safe_manifest_path",
]

# Site code (3 characters) + five hex digits, e.g. PS100001 (DESIGN §2).
_PACKAGE_ID = re.compile(r"[A-Za-z0-9]{3}[0-9A-Fa-f]{5}")
_SOURCE_VERSION = re.compile(r"[0-9]{1,9}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Percent-encoded separators smuggle a "/" or "\" past the router's split.
_ENCODED_SEPARATOR = re.compile(rb"%(2f|5c|00)", re.IGNORECASE)

ExtraAuth = Callable[[str], bool]
"""Accepts a DP's own or a peer DP's credential (checked before site tokens)."""

_NOT_FOUND = "no such package version on this distribution point"
_FILE_NOT_FOUND = "no such file in this package version"


def safe_manifest_path(path: str) -> bool:
    """Whether ``path`` is a plain relative POSIX path as manifests hold them.

    Rejects absolute paths, ``.``/``..``/empty segments, backslashes and
    control characters before anything is looked up.
    """
    if not path or len(path) > 4096 or path.startswith("/"):
        return False
    if any(ord(c) < 0x20 or c in "\\\x7f" for c in path):
        return False
    return all(seg not in ("", ".", "..") for seg in path.split("/"))


def _manifest_created_at(data: bytes) -> datetime | None:
    """The manifest's ``created_at``, used as its Last-Modified."""
    try:
        created = json.loads(data).get("created_at")
        parsed = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except (ValueError, AttributeError, TypeError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class DirectoryContentSource:
    """A directory-backed ``ContentSource``.

    Layout::

        <root>/manifests/<package_id>/<source_version>.json
        <root>/objects/<sha256[:2]>/<sha256>

    Files are the single-instance objects named by their SHA-256; the
    manifest's ``created_at`` is every file's Last-Modified, so the validators
    do not change when an object is re-copied.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _manifest_path(self, package_id: str, source_version: int) -> Path | None:
        if not _PACKAGE_ID.fullmatch(package_id) or source_version < 0:
            return None
        return self.root / "manifests" / package_id / f"{source_version}.json"

    def manifest_bytes(self, package_id: str, source_version: int) -> bytes | None:
        path = self._manifest_path(package_id, source_version)
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError:
            return None

    def file_entry(self, package_id: str, source_version: int, path: str) -> FileEntry | None:
        data = self.manifest_bytes(package_id, source_version)
        if data is None:
            return None
        try:
            manifest: dict[str, Any] = json.loads(data)
            files = {f["path"]: f for f in manifest["files"]}
        except (ValueError, KeyError, TypeError):
            return None
        item = files.get(path)
        created = _manifest_created_at(data)
        if item is None or created is None:
            return None
        sha, size = item.get("sha256"), item.get("size")
        if not isinstance(sha, str) or not _SHA256_HEX.fullmatch(sha) or not isinstance(size, int):
            return None
        objects = self.root / "objects"
        object_path = objects / sha[:2] / sha
        if not object_path.exists():
            return None  # not yet downloaded and verified
        return FileEntry(object_path, size, sha, created, store_root=objects)


class ContentService:
    """The ``/content`` routes of one DP process, with its transfer limiter."""

    def __init__(
        self,
        source: ContentSource,
        public_key: SitePublicKey,
        *,
        extra_auth: ExtraAuth | None = None,
        max_transfers: int | None = 10,
        retry_after_s: int = 5,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        stall_timeout_s: float | None = DEFAULT_STALL_TIMEOUT_S,
    ) -> None:
        self.source = source
        self.public_key = public_key
        self.extra_auth = extra_auth
        self.limiter = TransferLimiter(max_transfers, retry_after_s)
        self.chunk_size = chunk_size
        self.stall_timeout_s = stall_timeout_s

    def router(self) -> APIRouter:
        router = APIRouter(tags=["content"])
        router.add_api_route(
            "/content/{package_id}/{source_version}/manifest",
            self.get_manifest,
            methods=["GET", "HEAD"],
            summary="A package version's manifest (JSON, signed by the site)",
            response_class=Response,
        )
        router.add_api_route(
            "/content/{package_id}/{source_version}/files/{file_path:path}",
            self.get_file,
            methods=["GET", "HEAD"],
            summary="One file of a package version, with Range/If-Range support",
            response_class=Response,
        )
        return router

    # -- authentication ----------------------------------------------------

    def _authorise(self, request: Request, package_id: str, version: int) -> Response | None:
        """None when the caller may read this package version, else the error."""
        token = _bearer_token(request)
        if not token:
            return error_response(
                401,
                "an access token is required (Authorization: Bearer or ?token=)",
                headers={"www-authenticate": "Bearer"},
            )
        if self.extra_auth is not None and self.extra_auth(token):
            return None
        try:
            self.public_key.check_access(token, package_id, version)
        except SignatureError as exc:
            return error_response(
                403,
                f"access token refused: {exc}",
                headers={"www-authenticate": 'Bearer error="invalid_token"'},
            )
        return None

    # -- handlers ----------------------------------------------------------

    async def get_manifest(
        self, request: Request, package_id: str, source_version: str
    ) -> Response:
        version = _parse_version(source_version)
        refused = self._authorise(request, package_id, -1 if version is None else version)
        if refused is not None:
            return refused
        if version is None or not _PACKAGE_ID.fullmatch(package_id):
            return error_response(404, _NOT_FOUND)
        data = await anyio.to_thread.run_sync(self.source.manifest_bytes, package_id, version)
        if data is None:
            return error_response(404, _NOT_FOUND)
        return bytes_response(
            request,
            data,
            sha256_hex=hashlib.sha256(data).hexdigest(),
            last_modified=_manifest_created_at(data),
        )

    async def get_file(
        self, request: Request, package_id: str, source_version: str, file_path: str
    ) -> Response:
        version = _parse_version(source_version)
        refused = self._authorise(request, package_id, -1 if version is None else version)
        if refused is not None:
            return refused
        if version is None or not _PACKAGE_ID.fullmatch(package_id):
            return error_response(404, _NOT_FOUND)
        if _ENCODED_SEPARATOR.search(request.scope.get("raw_path") or b"") or not (
            safe_manifest_path(file_path)
        ):
            return error_response(404, _FILE_NOT_FOUND)
        entry = await anyio.to_thread.run_sync(
            self.source.file_entry, package_id, version, file_path
        )
        if entry is None:
            return error_response(404, _FILE_NOT_FOUND)
        return file_response(
            request,
            entry,
            chunk_size=self.chunk_size,
            limiter=self.limiter,
            stall_timeout_s=self.stall_timeout_s,
        )


def _parse_version(text: str) -> int | None:
    return int(text) if _SOURCE_VERSION.fullmatch(text) else None


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    return request.query_params.get("token") or None


def create_content_app(
    source: ContentSource,
    public_key: SitePublicKey,
    *,
    extra_auth: ExtraAuth | None = None,
    max_transfers: int | None = 10,
    retry_after_s: int = 5,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    stall_timeout_s: float | None = DEFAULT_STALL_TIMEOUT_S,
) -> FastAPI:
    """A stand-alone app serving only ``/content`` (tests, benchmarks, tiny DPs)."""
    service = ContentService(
        source,
        public_key,
        extra_auth=extra_auth,
        max_transfers=max_transfers,
        retry_after_s=retry_after_s,
        chunk_size=chunk_size,
        stall_timeout_s=stall_timeout_s,
    )
    app = FastAPI(title="peerdp distribution point content", docs_url=None, redoc_url=None)
    app.include_router(service.router())
    app.state.content_service = service
    return app


# --------------------------------------------------------------------------
# Zero-copy serving under uvicorn
# --------------------------------------------------------------------------
#
# uvicorn does not implement the ASGI "http.response.zerocopysend" (nor
# "pathsend") extension, so file bodies would be copied twice through Python.
# This protocol is uvicorn's httptools protocol plus that extension: the DP
# runs ``uvicorn.run(app, http=ZeroCopyHttpToolsProtocol)`` (CLI:
# ``--http peerdp.dp.content_app:ZeroCopyHttpToolsProtocol``) and
# ``ContentResponse`` then hands the open descriptor to os.sendfile, as nginx
# does. Everything else (status line, headers, keep-alive, Content-Length
# accounting) stays uvicorn's. Without it, the same app streams in chunks.

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
        try:
            stall = message.get(STALL_TIMEOUT_KEY)
            await _flush_transport(cycle)
            await _sendfile_all(sock_fd, fd, offset, count, stall)
        except (BrokenPipeError, ConnectionError, TimeoutError):
            # Gone, or stalled past the timeout: drop the connection (the
            # response cannot be completed) and let the app finish.
            cycle.disconnected = True
            cycle.transport.close()
            return
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
    sock_fd: int, fd: int, offset: int, count: int, stall_timeout_s: float | None = None
) -> None:
    """os.sendfile the whole range onto the non-blocking socket.

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


def server_config(app: Any) -> Any:
    """The uvicorn configuration every DP serves with: zero-copy file bodies (sendfile)."""
    import uvicorn

    return uvicorn.Config(
        app,
        http=ZeroCopyHttpToolsProtocol,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
