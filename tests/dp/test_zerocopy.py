"""The zero-copy uvicorn protocol (dp/zerocopy.py).

It patches uvicorn internals, so these tests fail loudly if a uvicorn upgrade moves
what it relies on: the hooks and attributes are checked by name, and a real uvicorn
server built by ``server_config`` must serve a file through ``os.sendfile``.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from peerdp.dp import zerocopy
from peerdp.dp.http.response import ZEROCOPY_SEND
from peerdp.dp.routes import create_content_app
from peerdp.dp.zerocopy import ZeroCopyHttpToolsProtocol, _zerocopy_send, server_config
from peerdp.security.signing import SiteKey

from .directory_source import DirectoryContentSource
from .support import PACKAGE, VERSION, add_version, key_public

# -- what the patch relies on in uvicorn -------------------------------------------------

# Set by RequestResponseCycle.__init__ and read or written by _zerocopy_send.
CYCLE_ATTRIBUTES = {
    "scope",
    "transport",
    "disconnected",
    "response_started",
    "response_complete",
    "chunked_encoding",
    "expected_content_length",
}


def _assigned_self_attributes(function: Any) -> set[str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Store)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    }


def test_uvicorn_hooks_the_patch_overrides_exist() -> None:
    assert issubclass(ZeroCopyHttpToolsProtocol, HttpToolsProtocol)
    hook = inspect.signature(HttpToolsProtocol.on_headers_complete)
    assert list(hook.parameters) == ["self"]
    # on_headers_complete builds the request's cycle as self.cycle from self.scope.
    assigned = _assigned_self_attributes(HttpToolsProtocol.on_headers_complete)
    assert "cycle" in assigned
    source = inspect.getsource(HttpToolsProtocol.on_headers_complete)
    assert "scope=self.scope" in source
    assert "transport=self.transport" in source


def test_uvicorn_cycle_send_and_state_are_as_expected() -> None:
    send = inspect.signature(RequestResponseCycle.send)
    assert list(send.parameters) == ["self", "message"]
    assert inspect.iscoroutinefunction(RequestResponseCycle.send)
    assert _assigned_self_attributes(RequestResponseCycle.__init__) >= CYCLE_ATTRIBUTES
    # The patch replaces cycle.send on the instance before run_asgi starts: run_asgi must
    # look it up on self when it runs, not capture the class's method earlier.
    assert "self.send" in inspect.getsource(RequestResponseCycle.run_asgi)


def test_server_config_options_exist() -> None:
    parameters = inspect.signature(uvicorn.Config).parameters
    for name in ("http", "log_level", "access_log", "lifespan", "timeout_graceful_shutdown"):
        assert name in parameters
    config = server_config(object())
    assert config.http is ZeroCopyHttpToolsProtocol


# -- the send itself --------------------------------------------------------------------


def test_zerocopy_waits_for_queued_bytes_before_sendfile(tmp_path: Path) -> None:
    """Bytes still queued in the transport (e.g. a part header) go out before file data."""
    data = os.urandom(200_000)
    path = tmp_path / "obj"
    path.write_bytes(data)
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.settimeout(5)  # a missing HEADER fails the test instead of hanging it

    class Transport:
        """Holds b"HEADER" for two polls, then flushes it to the socket."""

        def __init__(self) -> None:
            self.polls = 0

        def get_write_buffer_size(self) -> int:
            self.polls += 1
            if self.polls == 3:
                ours.send(b"HEADER")
                return 0
            return 0 if self.polls > 3 else 6

        def close(self) -> None:
            pass

    cycle = SimpleNamespace(
        disconnected=False,
        response_started=True,
        response_complete=False,
        chunked_encoding=False,
        expected_content_length=len(data),
        scope={"method": "GET"},
        transport=Transport(),
    )
    finals: list[object] = []

    async def plain_send(message: object) -> None:
        finals.append(message)

    async def main() -> bytes:
        received = bytearray()
        loop = asyncio.get_running_loop()
        with path.open("rb") as fh:
            message = {"type": ZEROCOPY_SEND, "file": fh, "offset": 0, "count": len(data)}
            task = asyncio.create_task(_zerocopy_send(cycle, plain_send, ours.fileno(), message))  # type: ignore[arg-type]
            while len(received) < len(data) + 6:
                received += await loop.run_in_executor(None, theirs.recv, 1 << 16)
            await task
        return bytes(received)

    try:
        received = asyncio.run(main())
    finally:
        ours.close()
        theirs.close()
    assert received == b"HEADER" + data
    assert cycle.expected_content_length == 0
    assert finals == [{"type": "http.response.body", "body": b"", "more_body": False}]


# -- a real server ----------------------------------------------------------------------


class _SendfileSpy:
    """Counts calls of the module's own _sendfile_all and the bytes they send."""

    def __init__(self) -> None:
        self.real = zerocopy._sendfile_all
        self.calls = 0
        self.bytes = 0

    async def __call__(
        self,
        sock_fd: int,
        fd: int,
        offset: int,
        count: int,
        stall: float | None = None,
        progress: list[int] | None = None,
    ) -> None:
        self.calls += 1
        self.bytes += count
        await self.real(sock_fd, fd, offset, count, stall, progress)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, bytes, str]]:
    """A content app under a real uvicorn server built by server_config; (url, data, token)."""
    data = os.urandom(5 * 1024 * 1024 + 321)
    root = tmp_path / "store"
    add_version(root, PACKAGE, VERSION, {"big.bin": data})
    key = SiteKey.generate()
    app = create_content_app(DirectoryContentSource(root), key_public(key))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    server = uvicorn.Server(server_config(app))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        token = key.access_token(PACKAGE, VERSION, "client-1")
        yield f"http://127.0.0.1:{port}/content/{PACKAGE}/{VERSION}/files/big.bin", data, token
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_real_server_sends_files_with_sendfile(
    served: tuple[str, bytes, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, data, token = served
    spy = _SendfileSpy()
    monkeypatch.setattr(zerocopy, "_sendfile_all", spy)
    before = ZeroCopyHttpToolsProtocol.zerocopy_bytes_total
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        whole = client.get(url)
        ranged = client.get(url, headers={"Range": "bytes=100-199,-50"})
    assert whole.status_code == 200
    assert whole.content == data
    assert ranged.status_code == 206
    assert ranged.headers["content-type"].startswith("multipart/byteranges")
    assert data[100:200] in ranged.content and data[-50:] in ranged.content
    # One sendfile per range: the whole file, then the two parts.
    assert spy.calls == 3
    assert spy.bytes == len(data) + 150
    assert ZeroCopyHttpToolsProtocol.zerocopy_bytes_total - before == len(data) + 150
