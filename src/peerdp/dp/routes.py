"""The ``/content`` routes every distribution point serves.

    HEAD/GET /content/{package_id}/{source_version}/manifest
    HEAD/GET /content/{package_id}/{source_version}/files/{path}

A DP plugs its store in through the small ``ContentSource`` protocol and mounts
the router::

    service = ContentService(store, site_public_key,
                             ContentOptions(max_transfers=10, extra_auth=my_credentials.is_valid))
    app.include_router(service.router())
    uvicorn.Server(server_config(app)).run()   # file bodies via os.sendfile (dp.zerocopy)

Every lookup goes through the manifest: the URL path is only a key into the
manifest's file list and is never joined onto a filesystem path. Every answer is counted
for `/metrics` (dp/served.py): requests and body bytes by package, refusals by status.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import anyio
from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response

from peerdp.content.ids import is_package_id
from peerdp.domain.timestamps import parse_rfc3339
from peerdp.dp.http.response import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_STALL_TIMEOUT_S,
    TLS_CHUNK_SIZE,
    TransferLimiter,
    bytes_response,
    error_response,
    file_response,
)
from peerdp.dp.served import count_answer, count_refusal
from peerdp.dp.source import ContentSource
from peerdp.security.bearer import bearer_token
from peerdp.security.signing import SignatureError, SitePublicKey

__all__ = [
    "ContentOptions",
    "ContentService",
    "ExtraAuth",
    "create_content_app",
    "safe_manifest_path",
]

_SOURCE_VERSION = re.compile(r"[0-9]{1,9}")
# Percent-encoded separators smuggle a "/" or "\" past the router's split.
_ENCODED_SEPARATOR = re.compile(rb"%(2f|5c|00)", re.IGNORECASE)

ExtraAuth = Callable[[str], bool]
"""Accepts a DP's own or a peer DP's credential (checked before site tokens)."""

_NOT_FOUND = "no such package version on this distribution point"
_FILE_NOT_FOUND = "no such file in this package version"


@dataclass(frozen=True)
class ContentOptions:
    """How one DP process serves ``/content``."""

    # A DP's own or a peer DP's credential, accepted besides site access tokens.
    extra_auth: ExtraAuth | None = None
    # Bodies in flight at once (None: no limit); more are refused with 503.
    max_transfers: int | None = 10
    retry_after_s: int = 5
    chunk_size: int = DEFAULT_CHUNK_SIZE
    stall_timeout_s: float | None = DEFAULT_STALL_TIMEOUT_S


def content_options(max_transfers: int | None, *, tls: bool) -> ContentOptions:
    """How a DP process serves `/content`: its transfer limit, and body pieces sized for
    plain HTTP or for TLS."""
    chunk_size = TLS_CHUNK_SIZE if tls else DEFAULT_CHUNK_SIZE
    return ContentOptions(max_transfers=max_transfers, chunk_size=chunk_size)


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
        return parse_rfc3339(str(json.loads(data).get("created_at")))
    except (ValueError, AttributeError, TypeError):
        return None


class ContentService:
    """The ``/content`` routes of one DP process, with its transfer limiter."""

    def __init__(
        self,
        source: ContentSource,
        public_key: SitePublicKey,
        options: ContentOptions | None = None,
    ) -> None:
        self.source = source
        self.public_key = public_key
        self.options = options or ContentOptions()
        self.limiter = TransferLimiter(self.options.max_transfers, self.options.retry_after_s)

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
        token = _request_token(request)
        if not token:
            return error_response(
                401,
                "an access token is required (Authorization: Bearer or ?token=)",
                headers={"www-authenticate": "Bearer"},
            )
        extra_auth = self.options.extra_auth
        if extra_auth is not None and extra_auth(token):
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

    def _version_asked(
        self, request: Request, package_id: str, source_version: str
    ) -> int | Response:
        """The source version a request may read, or the answer refusing it: the token is
        checked before the path, so a caller without one learns nothing of what exists."""
        version = _parse_version(source_version)
        refused = self._authorise(request, package_id, -1 if version is None else version)
        if refused is not None:
            return refused
        if version is None or not is_package_id(package_id):
            return error_response(404, _NOT_FOUND)
        return version

    # -- handlers ----------------------------------------------------------

    async def get_manifest(
        self, request: Request, package_id: str, source_version: str
    ) -> Response:
        version = self._version_asked(request, package_id, source_version)
        if isinstance(version, Response):
            return count_refusal(version)
        data = await anyio.to_thread.run_sync(self.source.manifest_bytes, package_id, version)
        if data is None:
            return count_refusal(error_response(404, _NOT_FOUND))
        answer = bytes_response(
            request,
            data,
            sha256_hex=hashlib.sha256(data).hexdigest(),
            last_modified=_manifest_created_at(data),
        )
        return count_answer(package_id, answer)

    async def get_file(
        self, request: Request, package_id: str, source_version: str, file_path: str
    ) -> Response:
        version = self._version_asked(request, package_id, source_version)
        if isinstance(version, Response):
            return count_refusal(version)
        if _ENCODED_SEPARATOR.search(request.scope.get("raw_path") or b"") or not (
            safe_manifest_path(file_path)
        ):
            return count_refusal(error_response(404, _FILE_NOT_FOUND))
        entry = await anyio.to_thread.run_sync(
            self.source.file_entry, package_id, version, file_path
        )
        if entry is None:
            return count_refusal(error_response(404, _FILE_NOT_FOUND))
        answer = file_response(
            request,
            entry,
            chunk_size=self.options.chunk_size,
            limiter=self.limiter,
            stall_timeout_s=self.options.stall_timeout_s,
        )
        return count_answer(package_id, answer)


def _parse_version(text: str) -> int | None:
    return int(text) if _SOURCE_VERSION.fullmatch(text) else None


def _request_token(request: Request) -> str | None:
    """The bearer token of the ``Authorization`` header, else the ``token`` query parameter
    (for clients that cannot set headers); a header naming another scheme counts as none."""
    header = request.headers.get("authorization")
    if header is not None:
        return bearer_token(header)
    return request.query_params.get("token") or None


def create_content_app(
    source: ContentSource,
    public_key: SitePublicKey,
    options: ContentOptions | None = None,
) -> FastAPI:
    """A stand-alone app serving only ``/content`` (tests, benchmarks, tiny DPs)."""
    service = ContentService(source, public_key, options)
    app = FastAPI(title="peerdp distribution point content", docs_url=None, redoc_url=None)
    app.include_router(service.router())
    app.state.content_service = service
    return app
