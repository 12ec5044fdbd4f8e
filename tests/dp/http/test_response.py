"""The content responses against a real uvicorn server: RFC 9110 ranges and
conditionals, framing, the zero-copy body path, the transfer limiter and stalled clients."""

from __future__ import annotations

import itertools
import os
import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from ..support import (
    LAST_MODIFIED,
    PACKAGE,
    VERSION,
    Server,
    assert_error,
    assert_plain_framing,
    serve_store,
    sha256,
)


def big(server: Server) -> bytes:
    return server.files["big.bin"]


# -- whole files and HEAD ---------------------------------------------------


def test_head_reports_metadata_without_body(server: Server, client: httpx.Client) -> None:
    data = big(server)
    resp = client.head(server.url("big.bin"))
    assert resp.status_code == 200
    assert resp.headers["content-length"] == str(len(data))
    assert resp.headers["accept-ranges"] == "bytes"
    assert resp.headers["etag"] == f'"{sha256(data)}"'
    assert resp.headers["last-modified"] == LAST_MODIFIED
    assert resp.headers["content-type"] == "application/octet-stream"
    assert "transfer-encoding" not in resp.headers
    assert resp.content == b""


def test_head_ignores_range(server: Server, client: httpx.Client) -> None:
    resp = client.head(server.url("big.bin"), headers={"Range": "bytes=0-9"})
    assert resp.status_code == 200
    assert resp.headers["content-length"] == str(len(big(server)))


def test_get_whole_file(server: Server, client: httpx.Client) -> None:
    resp = client.get(server.url("big.bin"), headers={"Accept-Encoding": "gzip, br"})
    assert resp.status_code == 200
    assert sha256(resp.content) == sha256(big(server))
    assert_plain_framing(resp)


def test_get_small_and_unicode_names(server: Server, client: httpx.Client) -> None:
    for name in ("dir/small.txt", "sub dir/na\u00efve file.txt"):
        resp = client.get(server.url(name))
        assert resp.status_code == 200, name
        assert resp.content == server.files[name]


def test_empty_file_ignores_range(server: Server, client: httpx.Client) -> None:
    resp = client.get(server.url("empty.bin"), headers={"Range": "bytes=0-"})
    assert resp.status_code == 200
    assert resp.content == b""
    assert resp.headers["content-length"] == "0"


# -- ranges -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [
        ("bytes=100-199", 100, 200),  # one range
        ("bytes=0-0", 0, 1),
        ("bytes=8000000-", 8000000, None),  # open range
        ("bytes=-500", -500, None),  # suffix range
        ("bytes=-999999999", 0, None),  # suffix longer than the file: all of it
        ("bytes=10-999999999999", 10, None),  # last-pos past the end is clipped
        ("BYTES = 5-9", 5, 10),  # unit is case-insensitive
    ],
)
def test_single_range(
    server: Server, client: httpx.Client, spec: str, start: int, end: int | None
) -> None:
    data = big(server)
    want = data[start:end]
    first = start % len(data)
    resp = client.get(server.url("big.bin"), headers={"Range": spec})
    assert resp.status_code == 206
    assert resp.headers["content-range"] == f"bytes {first}-{first + len(want) - 1}/{len(data)}"
    assert resp.content == want
    assert resp.headers["etag"] == f'"{sha256(data)}"'
    assert_plain_framing(resp)


def parse_multipart(resp: httpx.Response) -> list[tuple[str, str, bytes]]:
    """Strict multipart/byteranges reader: (content-type, content-range, body) per part."""
    match = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", resp.headers["content-type"])
    assert match, resp.headers["content-type"]
    delim = b"--" + match.group(1).encode()
    body, pos, parts = resp.content, 0, []
    while True:
        assert body[pos : pos + 2] == b"\r\n"
        pos += 2
        assert body[pos : pos + len(delim)] == delim
        pos += len(delim)
        if body[pos : pos + 2] == b"--":
            assert body[pos + 2 :] in (b"", b"\r\n")
            return parts
        assert body[pos : pos + 2] == b"\r\n"
        head_end = body.index(b"\r\n\r\n", pos)
        fields = dict(
            line.split(": ", 1) for line in body[pos + 2 : head_end].decode().split("\r\n")
        )
        pos = head_end + 4
        rng = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", fields["Content-Range"])
        assert rng
        length = int(rng.group(2)) - int(rng.group(1)) + 1
        parts.append((fields["Content-Type"], fields["Content-Range"], body[pos : pos + length]))
        pos += length


def test_multiple_ranges_multipart(server: Server, client: httpx.Client) -> None:
    data = big(server)
    n = len(data)
    resp = client.get(server.url("big.bin"), headers={"Range": "bytes=0-9, 1000-1999,-10"})
    assert resp.status_code == 206
    assert_plain_framing(resp)
    assert "content-range" not in resp.headers
    parts = parse_multipart(resp)
    assert parts == [
        ("application/octet-stream", f"bytes 0-9/{n}", data[0:10]),
        ("application/octet-stream", f"bytes 1000-1999/{n}", data[1000:2000]),
        ("application/octet-stream", f"bytes {n - 10}-{n - 1}/{n}", data[n - 10 :]),
    ]


def test_multiple_ranges_spanning_chunks(server: Server, client: httpx.Client) -> None:
    data = big(server)
    resp = client.get(server.url("big.bin"), headers={"Range": "bytes=1000000-3500000,5000000-"})
    parts = parse_multipart(resp)
    assert [p[2] for p in parts] == [data[1000000:3500001], data[5000000:]]


def test_multipart_to_a_slow_reader(server: Server) -> None:
    """Part headers stay in order with the data even when the socket is full.

    A slow reader keeps the socket full, so part headers queue in the
    transport while file data may go out by sendfile: they must not overtake.
    """
    data = big(server)
    spec = "bytes=0-2999999,3000100-5999999,6000100-"
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(
        f"GET /content/{PACKAGE}/{VERSION}/files/big.bin HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {server.token()}\r\nRange: {spec}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    chunks = []
    sock.settimeout(30)
    for i in itertools.count():
        if i < 200:
            time.sleep(0.002)  # slow at first: the server meets a full socket
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    sock.close()
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 206")
    content_type = re.search(rb"content-type: (.+)\r\n", head).group(1).decode()  # type: ignore[union-attr]
    parts = parse_multipart(
        httpx.Response(206, headers={"content-type": content_type}, content=body)
    )
    assert [p[2] for p in parts] == [data[0:3000000], data[3000100:6000000], data[6000100:]]


def test_overlapping_ranges_are_coalesced(server: Server, client: httpx.Client) -> None:
    data = big(server)
    resp = client.get(server.url("big.bin"), headers={"Range": "bytes=50-149,0-99"})
    assert resp.status_code == 206
    assert resp.headers["content-range"] == f"bytes 0-149/{len(data)}"
    assert resp.content == data[:150]


def test_unsatisfiable_ranges_dropped_when_one_fits(server: Server, client: httpx.Client) -> None:
    data = big(server)
    resp = client.get(server.url("big.bin"), headers={"Range": f"bytes={len(data)}-,5-6"})
    assert resp.status_code == 206
    assert resp.content == data[5:7]


@pytest.mark.parametrize("spec", ["bytes={n}-", "bytes={n}-{m}", "bytes=-0", "bytes={n}-,-0"])
def test_unsatisfiable_range_416(server: Server, client: httpx.Client, spec: str) -> None:
    n = len(big(server))
    resp = client.get(server.url("big.bin"), headers={"Range": spec.format(n=n, m=n + 10)})
    assert_error(resp, 416)
    assert resp.headers["content-range"] == f"bytes */{n}"


@pytest.mark.parametrize(
    "spec",
    [
        "bytes=abc",
        "bytes=5-2",
        "items=0-5",
        "bytes=",
        "bytes=1-2-3",
        "0-5",
        "bytes=+1-2",
        "bytes=--1",
    ],
)
def test_malformed_range_is_ignored(server: Server, client: httpx.Client, spec: str) -> None:
    resp = client.get(server.url("dir/small.txt"), headers={"Range": spec})
    assert resp.status_code == 200
    assert resp.content == server.files["dir/small.txt"]


def test_too_many_ranges_is_ignored(server: Server, client: httpx.Client) -> None:
    spec = "bytes=" + ",".join(f"{i * 10}-{i * 10}" for i in range(200))
    resp = client.get(server.url("dir/small.txt"), headers={"Range": spec})
    assert resp.status_code == 200


def test_ranges_on_manifest(server: Server, client: httpx.Client) -> None:
    url = f"{server.base_url}/content/{PACKAGE}/{VERSION}/manifest"
    resp = client.get(url, headers={"Range": "bytes=0-9"})
    assert resp.status_code == 206
    assert resp.content == server.manifest[:10]


def test_zero_copy_path_is_used_when_offered(server: Server, client: httpx.Client) -> None:
    from peerdp.dp.zerocopy import ZeroCopyHttpToolsProtocol as Proto

    before = Proto.zerocopy_bytes_total
    resp = client.get(server.url("big.bin"), headers={"Range": "bytes=10-,0-4"})
    assert resp.status_code == 206
    sent = Proto.zerocopy_bytes_total - before
    assert sent == (len(big(server)) - 5 if server.zerocopy else 0)
    # Small in-memory bodies (the manifest) are never sent with sendfile.
    before = Proto.zerocopy_bytes_total
    client.get(f"{server.base_url}/content/{PACKAGE}/{VERSION}/manifest")
    assert Proto.zerocopy_bytes_total == before


# -- conditionals -------------------------------------------------------------


def test_if_range_stale_etag_sends_whole(server: Server, client: httpx.Client) -> None:
    resp = client.get(
        server.url("big.bin"), headers={"Range": "bytes=0-9", "If-Range": '"' + "0" * 64 + '"'}
    )
    assert resp.status_code == 200
    assert len(resp.content) == len(big(server))


def test_if_range_matching_etag_sends_range(server: Server, client: httpx.Client) -> None:
    etag = f'"{sha256(big(server))}"'
    resp = client.get(server.url("big.bin"), headers={"Range": "bytes=0-9", "If-Range": etag})
    assert resp.status_code == 206
    assert resp.content == big(server)[:10]


def test_if_range_weak_etag_never_matches(server: Server, client: httpx.Client) -> None:
    etag = f'W/"{sha256(big(server))}"'
    resp = client.get(server.url("big.bin"), headers={"Range": "bytes=0-9", "If-Range": etag})
    assert resp.status_code == 200


@pytest.mark.parametrize(
    ("date", "status"),
    [(LAST_MODIFIED, 206), ("Wed, 01 May 2024 11:59:59 GMT", 200), ("garbage", 200)],
)
def test_if_range_date(server: Server, client: httpx.Client, date: str, status: int) -> None:
    resp = client.get(server.url("big.bin"), headers={"Range": "bytes=0-9", "If-Range": date})
    assert resp.status_code == status


@pytest.mark.parametrize(
    ("date", "status"),
    [
        ("Wed, 01 May 2024 11:59:59 GMT", 412),
        (LAST_MODIFIED, 200),
        ("Thu, 02 May 2024 00:00:00 GMT", 200),
        ("not a date", 200),
    ],
)
def test_if_unmodified_since(server: Server, client: httpx.Client, date: str, status: int) -> None:
    resp = client.get(server.url("dir/small.txt"), headers={"If-Unmodified-Since": date})
    assert resp.status_code == status
    if status == 412:
        assert_error(resp, 412)


def test_if_unmodified_since_beats_range(server: Server, client: httpx.Client) -> None:
    headers = {"If-Unmodified-Since": "Wed, 01 May 2024 11:00:00 GMT", "Range": "bytes=0-1"}
    assert client.get(server.url("big.bin"), headers=headers).status_code == 412


def test_if_match(server: Server, client: httpx.Client) -> None:
    etag = f'"{sha256(server.files["dir/small.txt"])}"'
    url = server.url("dir/small.txt")
    assert client.get(url, headers={"If-Match": '"nope"'}).status_code == 412
    assert client.get(url, headers={"If-Match": f'"x", {etag}'}).status_code == 200
    assert client.get(url, headers={"If-Match": "*"}).status_code == 200


def test_not_modified(server: Server, client: httpx.Client) -> None:
    etag = f'"{sha256(server.files["dir/small.txt"])}"'
    url = server.url("dir/small.txt")
    resp = client.get(url, headers={"If-None-Match": f"W/{etag}"})
    assert resp.status_code == 304
    assert resp.headers["etag"] == etag
    assert resp.content == b""
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get(url, headers={"If-Modified-Since": LAST_MODIFIED}).status_code == 304
    older = "Tue, 30 Apr 2024 00:00:00 GMT"
    assert client.get(url, headers={"If-Modified-Since": older}).status_code == 200


# -- transfer limiter ---------------------------------------------------------

LIMIT = 2


@pytest.fixture(scope="module", params=["stream", "zerocopy"])
def limited(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    # 32 MiB: more than loopback socket buffers hold, so an unread download stalls.
    files = {"huge.bin": os.urandom(32 * 1024 * 1024), "tiny.txt": b"tiny"}
    yield from serve_store(
        tmp_path_factory.mktemp("limited"),
        files,
        max_transfers=LIMIT,
        zerocopy=request.param == "zerocopy",
    )


def open_stalled_download(server: Server, path: str) -> socket.socket:
    """Start a GET and read only the status line: the body stays in flight."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    request = (
        f"GET /content/{PACKAGE}/{VERSION}/files/{path} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {server.token()}\r\n\r\n"
    )
    sock.sendall(request.encode())
    assert sock.recv(12) == b"HTTP/1.1 200"
    return sock


def limiter_active(server: Server) -> int:
    return int(server.app.state.content_service.limiter.active)


def wait_for(predicate: object, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_limiter_503_with_retry_after(limited: Server) -> None:
    held = [open_stalled_download(limited, "huge.bin") for _ in range(LIMIT)]
    try:
        assert wait_for(lambda: limiter_active(limited) == LIMIT)
        resp = httpx.get(limited.url("tiny.txt"), headers=limited.auth())
        assert_error(resp, 503)
        assert resp.headers["retry-after"] == "7"
        # Metadata and conditional answers carry no body: not transfers.
        assert httpx.head(limited.url("huge.bin"), headers=limited.auth()).status_code == 200
        # A client that goes away frees its slot without finishing.
        held.pop().close()
        assert wait_for(lambda: limiter_active(limited) == LIMIT - 1)
        resp = httpx.get(limited.url("tiny.txt"), headers=limited.auth())
        assert resp.status_code == 200
        assert resp.content == b"tiny"
    finally:
        for sock in held:
            sock.close()
    assert wait_for(lambda: limiter_active(limited) == 0)


def test_limiter_released_after_complete_downloads(limited: Server) -> None:
    for _ in range(LIMIT + 3):
        resp = httpx.get(limited.url("huge.bin"), headers={**limited.auth(), "Range": "bytes=-3"})
        assert resp.status_code == 206
    assert wait_for(lambda: limiter_active(limited) == 0)


@pytest.fixture(scope="module", params=["stream", "zerocopy"])
def stalling(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    files = {"huge.bin": os.urandom(32 * 1024 * 1024), "tiny.txt": b"tiny"}
    yield from serve_store(
        tmp_path_factory.mktemp("stalling"),
        files,
        max_transfers=1,
        zerocopy=request.param == "zerocopy",
        stall_timeout_s=1.0,
    )


def test_stalled_client_is_dropped_and_frees_its_slot(stalling: Server) -> None:
    """A connected client that stops reading loses its slot after the stall timeout."""
    sock = open_stalled_download(stalling, "huge.bin")
    try:
        assert wait_for(lambda: limiter_active(stalling) == 1)
        assert httpx.get(stalling.url("tiny.txt"), headers=stalling.auth()).status_code == 503
        assert wait_for(lambda: limiter_active(stalling) == 0)
        resp = httpx.get(stalling.url("tiny.txt"), headers=stalling.auth())
        assert resp.status_code == 200
        # The server closed the stalled connection: draining it ends in EOF
        # well before the 32 MiB body is complete.
        sock.settimeout(20)
        received = 0
        while chunk := sock.recv(1 << 20):
            received += len(chunk)
        assert received < 32 * 1024 * 1024
    finally:
        sock.close()


LM = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def test_stalled_send_released_on_disconnect(tmp_path: Path) -> None:
    """A client that vanishes while the body is stuck in send frees its slot.

    Driven at the ASGI level: the server's send never completes (a stalled
    socket) and receive reports the disconnect.
    """
    import anyio
    from starlette.requests import Request

    from peerdp.dp.http.response import TransferLimiter, file_response
    from peerdp.dp.source import FileEntry

    data = os.urandom(3 * 1024 * 1024)
    path = tmp_path / sha256(data)
    path.write_bytes(data)
    entry = FileEntry(path, len(data), sha256(data), LM)
    limiter = TransferLimiter(1)
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    sent: list[dict[str, object]] = []
    requested: list[bool] = []

    async def main() -> None:
        stalled = anyio.Event()
        disconnected = anyio.Event()

        async def send(message: dict[str, object]) -> None:
            sent.append(message)
            if message.get("body"):
                disconnected.set()
                await stalled.wait()  # never set: the socket is stuck

        async def receive() -> dict[str, object]:
            if not requested:
                requested.append(True)
                return {"type": "http.request", "body": b"", "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        response = file_response(Request(scope), entry, limiter=limiter)
        with anyio.fail_after(20):
            await response(scope, receive, send)  # type: ignore[arg-type]

    anyio.run(main)
    assert sent[0]["status"] == 200
    assert limiter.active == 0
