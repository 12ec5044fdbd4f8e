"""Helpers for the DP content tests: a directory store and real uvicorn servers."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvicorn

from peerdp.dp.routes import ContentOptions, ExtraAuth, create_content_app
from peerdp.dp.zerocopy import ZeroCopyHttpToolsProtocol
from peerdp.security.signing import SiteKey, SitePublicKey
from tests.dp.directory_source import DirectoryContentSource

PACKAGE = "PS100001"
VERSION = 1
OTHER_PACKAGE = "PS100002"
CREATED_AT = "2024-05-01T12:00:00Z"
LAST_MODIFIED = "Wed, 01 May 2024 12:00:00 GMT"
DP_SECRET = "dp-own-credential-123"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def add_version(
    root: Path, package_id: str, version: int, files: dict[str, bytes], store: bool = True
) -> bytes:
    """Write a manifest (and, if `store`, the objects) the way a DP store lays them out."""
    entries = [{"path": p, "size": len(d), "sha256": sha256(d)} for p, d in files.items()]
    manifest = {
        "package_id": package_id,
        "source_version": version,
        "created_at": CREATED_AT,
        "files": entries,
    }
    raw = json.dumps(manifest, indent=1).encode()
    mdir = root / "manifests" / package_id
    mdir.mkdir(parents=True, exist_ok=True)
    (mdir / f"{version}.json").write_bytes(raw)
    if store:
        for data in files.values():
            put_object(root, data)
    return raw


def object_path(root: Path, digest: str) -> Path:
    return root / "objects" / digest[:2] / digest


def put_object(root: Path, data: bytes) -> Path:
    path = object_path(root, sha256(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@dataclass
class Server:
    base_url: str
    port: int
    app: Any
    root: Path
    key: SiteKey
    files: dict[str, bytes] = field(default_factory=dict)
    manifest: bytes = b""
    zerocopy: bool = False  # served through ZeroCopyHttpToolsProtocol (os.sendfile)

    def token(self, package_id: str = PACKAGE, version: int = VERSION, **kw: Any) -> str:
        return self.key.access_token(package_id, version, "client-1", **kw)

    def url(self, path: str, package_id: str = PACKAGE, version: int = VERSION) -> str:
        return f"{self.base_url}/content/{package_id}/{version}/files/{path}"

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class _Running:
    server: uvicorn.Server
    thread: threading.Thread


def start_uvicorn(app: Any, port: int, zerocopy: bool = False) -> _Running:
    http: Any = ZeroCopyHttpToolsProtocol if zerocopy else "httptools"
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", http=http
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return _Running(server, thread)


def stop_uvicorn(running: _Running) -> None:
    running.server.should_exit = True
    running.thread.join(timeout=10)


def make_files() -> dict[str, bytes]:
    rnd = os.urandom
    return {
        "big.bin": rnd(8 * 1024 * 1024 + 12345),  # odd size: last chunk is partial
        "dir/small.txt": b"hello, branch office\n" * 50,
        "empty.bin": b"",
        "sub dir/na\u00efve file.txt": b"unicode and spaces in the name\n",
    }


def serve_store(
    tmp: Path,
    files: dict[str, bytes],
    max_transfers: int | None,
    extra: ExtraAuth | None = None,
    zerocopy: bool = False,
    stall_timeout_s: float | None = 300.0,
) -> Iterator[Server]:
    key = SiteKey.generate()
    root = tmp / "store"
    manifest = add_version(root, PACKAGE, VERSION, files)
    add_version(root, OTHER_PACKAGE, 1, {"other.bin": b"other package"})
    options = ContentOptions(
        extra_auth=extra,
        max_transfers=max_transfers,
        retry_after_s=7,
        stall_timeout_s=stall_timeout_s,
    )
    app = create_content_app(DirectoryContentSource(root), key_public(key), options)
    port = free_port()
    running = start_uvicorn(app, port, zerocopy)
    try:
        yield Server(f"http://127.0.0.1:{port}", port, app, root, key, files, manifest, zerocopy)
    finally:
        stop_uvicorn(running)


def assert_plain_framing(resp: httpx.Response) -> None:
    """Content is never chunked and never content-coded."""
    assert "transfer-encoding" not in resp.headers
    assert "content-encoding" not in resp.headers
    assert resp.headers["content-length"] == str(len(resp.content))


def assert_error(resp: httpx.Response, status: int) -> None:
    """A JSON error answer ``{"detail": "..."}`` with ``status``."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    detail = resp.json()["detail"]
    assert isinstance(detail, str) and detail


def key_public(key: SiteKey) -> SitePublicKey:
    return SitePublicKey.from_b64(key.public_key_b64)


@contextlib.contextmanager
def stalled_download(base_url: str, path: str, token: str) -> Iterator[None]:
    """A GET that reads its first bytes and then nothing: a tiny receive buffer, so the
    DP cannot finish sending and keeps the transfer slot."""
    host, port = urlsplit(base_url).hostname, urlsplit(base_url).port
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((host, port))
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"
        sock.sendall(request.encode())
        assert sock.recv(64).startswith(b"HTTP/1.1 200")
        yield
