"""HTTP conformance of the /content routes against a real uvicorn server.

Covers RFC 9110 ranges and conditionals, access tokens, path traversal and
the transfer limiter; the pure helpers are tested directly at the end.
"""

from __future__ import annotations

import http.client
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

from peerdp.dp.http.semantics import (
    ByteRange,
    Validators,
    coalesce_ranges,
    evaluate_preconditions,
    if_range_allows,
    parse_range,
)

from .support import (
    CREATED_AT,
    DP_SECRET,
    LAST_MODIFIED,
    OTHER_PACKAGE,
    PACKAGE,
    VERSION,
    Server,
    add_version,
    object_path,
    put_object,
    serve_store,
    sha256,
)


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(headers=server.auth(), timeout=30) as c:
        yield c


def big(server: Server) -> bytes:
    return server.files["big.bin"]


def assert_plain_framing(resp: httpx.Response) -> None:
    """Content is never chunked and never content-coded."""
    assert "transfer-encoding" not in resp.headers
    assert "content-encoding" not in resp.headers
    assert resp.headers["content-length"] == str(len(resp.content))


def assert_error(resp: httpx.Response, status: int) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    detail = resp.json()["detail"]
    assert isinstance(detail, str) and detail


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


def test_token_in_query_string(server: Server) -> None:
    resp = httpx.get(server.url("dir/small.txt"), params={"token": server.token()})
    assert resp.status_code == 200
    assert resp.content == server.files["dir/small.txt"]


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


def test_manifest_served_byte_for_byte(server: Server, client: httpx.Client) -> None:
    url = f"{server.base_url}/content/{PACKAGE}/{VERSION}/manifest"
    resp = client.get(url)
    assert resp.status_code == 200
    assert resp.content == server.manifest
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["etag"] == f'"{sha256(server.manifest)}"'
    assert resp.headers["last-modified"] == LAST_MODIFIED
    head = client.head(url)
    assert head.headers["content-length"] == str(len(server.manifest))


# -- not found ----------------------------------------------------------------


def test_unknown_package_version_and_path(server: Server) -> None:
    cases = [
        (server.url("big.bin", package_id="PS1FFFFF"), server.token("PS1FFFFF")),
        (server.url("big.bin", version=2), server.token(version=2)),
        (f"{server.base_url}/content/{PACKAGE}/2/manifest", server.token(version=2)),
        (server.url("nope.bin"), server.token()),
        (server.url("dir"), server.token()),
    ]
    for url, token in cases:
        assert_error(httpx.get(url, headers={"Authorization": f"Bearer {token}"}), 404)


def test_listed_but_unverified_file_is_404(server: Server, client: httpx.Client) -> None:
    data = b"not downloaded yet"
    add_version(server.root, PACKAGE, 3, {"later.bin": data}, store=False)
    url = server.url("later.bin", version=3)
    token = server.token(version=3)
    assert_error(httpx.get(url, headers={"Authorization": f"Bearer {token}"}), 404)
    # A partial object (wrong size) is not served either.
    path = put_object(server.root, data)
    path.write_bytes(data[:5])
    assert_error(httpx.get(url, headers={"Authorization": f"Bearer {token}"}), 404)
    path.write_bytes(data)
    assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).content == data


# -- traversal ----------------------------------------------------------------


def raw_get(server: Server, path: str) -> tuple[int, bytes]:
    """GET with the path sent exactly as written (no client-side normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.putheader("Authorization", f"Bearer {server.token()}")
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


PASSWD = Path("/etc/passwd").read_bytes()


@pytest.mark.parametrize(
    "tail",
    [
        "../../../../../../etc/passwd",
        "dir/../big.bin",  # would resolve to a listed file: still refused
        "./big.bin",
        "%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "dir%2Fsmall.txt",  # encoded separator, even onto a listed file
        "dir%5csmall.txt",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "..%5c..%5c..%5cetc%5cpasswd",
        "big.bin%00.txt",
        "dir//small.txt",
    ],
)
def test_traversal_is_404(server: Server, tail: str) -> None:
    status, body = raw_get(server, f"/content/{PACKAGE}/{VERSION}/files/{tail}")
    assert status == 404, (tail, body[:200])
    assert b"root:" not in body
    assert b'"detail"' in body


def test_traversal_in_package_and_version_segments(server: Server) -> None:
    for path in (
        f"/content/..%2F..%2Fetc/{VERSION}/files/passwd",
        f"/content/{PACKAGE}/..%2F..%2F/files/passwd",
        f"/content/{PACKAGE}/{VERSION}/files/../manifest",
    ):
        status, body = raw_get(server, path)
        assert status in (403, 404), path  # the token names PS100001 v1 only
        assert b"root:" not in body


def test_planted_symlinks_are_not_followed(server: Server, tmp_path: Path) -> None:
    """A manifest entry whose object is a symlink to /etc/passwd answers 404."""
    digest = sha256(PASSWD)
    add_version(server.root, PACKAGE, 4, {"passwd.bin": PASSWD}, store=False)
    link = object_path(server.root, digest)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to("/etc/passwd")
    headers = {"Authorization": f"Bearer {server.token(version=4)}"}
    resp = httpx.get(server.url("passwd.bin", version=4), headers=headers)
    assert_error(resp, 404)
    assert b"root:" not in resp.content
    # A symlinked fan-out directory is refused as well.
    link.unlink()
    link.parent.rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / digest).write_bytes(PASSWD)
    link.parent.symlink_to(elsewhere, target_is_directory=True)
    try:
        resp = httpx.get(server.url("passwd.bin", version=4), headers=headers)
        assert_error(resp, 404)
        assert b"root:" not in resp.content
    finally:
        link.parent.unlink()


# -- access tokens ------------------------------------------------------------


def test_missing_token_401(server: Server) -> None:
    for url in (server.url("big.bin"), f"{server.base_url}/content/{PACKAGE}/{VERSION}/manifest"):
        resp = httpx.get(url)
        assert_error(resp, 401)
        assert resp.headers["www-authenticate"].startswith("Bearer")
    resp = httpx.get(server.url("big.bin"), headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_error(resp, 401)


def forged_token(server: Server) -> str:
    from peerdp.security.signing import SiteKey

    return SiteKey.generate().access_token(PACKAGE, VERSION, "mallory")


@pytest.mark.parametrize("kind", ["forged", "garbage", "other_package", "other_version", "expired"])
def test_bad_token_403(server: Server, kind: str) -> None:
    token = {
        "forged": lambda: forged_token(server),
        "garbage": lambda: "not.a-token",
        "other_package": lambda: server.token(OTHER_PACKAGE),
        "other_version": lambda: server.token(version=VERSION + 1),
        "expired": lambda: server.token(ttl_s=60, now=time.time() - 3600),
    }[kind]()
    for url in (server.url("big.bin"), f"{server.base_url}/content/{PACKAGE}/{VERSION}/manifest"):
        assert_error(httpx.get(url, headers={"Authorization": f"Bearer {token}"}), 403)
        assert httpx.head(url, params={"token": token}).status_code == 403


def test_token_for_other_package_works_there_only(server: Server) -> None:
    token = server.token(OTHER_PACKAGE)
    ok = httpx.get(server.url("other.bin", package_id=OTHER_PACKAGE), params={"token": token})
    assert ok.content == b"other package"


def test_dp_credential_hook(server: Server) -> None:
    resp = httpx.get(server.url("dir/small.txt"), headers={"Authorization": f"Bearer {DP_SECRET}"})
    assert resp.status_code == 200
    resp = httpx.get(server.url("dir/small.txt"), headers={"Authorization": "Bearer dp-wrong"})
    assert resp.status_code == 403


def test_other_methods_refused(server: Server, client: httpx.Client) -> None:
    assert client.post(server.url("big.bin")).status_code == 405
    assert client.delete(server.url("big.bin")).status_code == 405


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


# -- pure helpers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-499", 1000, [(0, 500)]),
        ("bytes=500-", 1000, [(500, 1000)]),
        ("bytes=-500", 1000, [(500, 1000)]),
        ("bytes=-5000", 1000, [(0, 1000)]),
        ("bytes=0-0,-1", 1000, [(0, 1), (999, 1000)]),
        ("bytes= 0-1 , ,5-6", 1000, [(0, 2), (5, 7)]),
        ("bytes=900-999,0-9", 1000, [(900, 1000), (0, 10)]),  # request order kept
        ("bytes=0-9,10-19,5-25", 1000, [(0, 26)]),  # adjacent + overlapping merge
        ("bytes=1000-", 1000, []),
        ("bytes=-0", 1000, []),
        ("bytes=0-", 0, None),
        ("bytes=5-4", 1000, None),
        ("bytes=a-b", 1000, None),
        ("bytes=\u0661-2", 1000, None),  # non-ASCII digits are not digits here
        ("chars=0-1", 1000, None),
        ("bytes", 1000, None),
    ],
)
def test_parse_range(header: str, size: int, expected: list[tuple[int, int]] | None) -> None:
    got = parse_range(header, size)
    assert got == (None if expected is None else [ByteRange(*r) for r in expected])


def test_coalesce_cascades() -> None:
    ranges = [ByteRange(0, 10), ByteRange(20, 30), ByteRange(40, 50), ByteRange(5, 45)]
    assert coalesce_ranges(ranges) == [ByteRange(0, 50)]


LM = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
VALIDATORS = Validators.of("a" * 64, LM)


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("GET", {}, None),
        ("GET", {"if-match": '"' + "a" * 64 + '"'}, None),
        ("GET", {"if-match": 'W/"' + "a" * 64 + '"'}, 412),  # If-Match compares strongly
        ("GET", {"if-match": '"b"', "if-unmodified-since": LAST_MODIFIED}, 412),
        ("GET", {"if-match": "*", "if-unmodified-since": "Mon, 01 Jan 2001 00:00:00 GMT"}, None),
        ("GET", {"if-unmodified-since": "Mon, 01 Jan 2001 00:00:00 GMT"}, 412),
        ("HEAD", {"if-none-match": "*"}, 304),
        ("POST", {"if-none-match": "*"}, 412),
        ("GET", {"if-none-match": '"zz"', "if-modified-since": LAST_MODIFIED}, None),
        ("GET", {"if-modified-since": "Wed, 01 May 2024 12:00:01 GMT"}, 304),
    ],
)
def test_evaluate_preconditions(method: str, headers: dict[str, str], expected: int | None) -> None:
    assert evaluate_preconditions(method, headers, VALIDATORS) == expected


def test_if_range_allows() -> None:
    assert if_range_allows(None, VALIDATORS)
    assert if_range_allows('"' + "a" * 64 + '"', VALIDATORS)
    assert not if_range_allows('"' + "b" * 64 + '"', VALIDATORS)
    assert if_range_allows(LAST_MODIFIED, VALIDATORS)
    assert not if_range_allows("Wed, 01 May 2024 12:00:01 GMT", VALIDATORS)
    # Sub-second Last-Modified values compare at HTTP's one-second resolution.
    assert if_range_allows(LAST_MODIFIED, Validators.of("a" * 64, LM.replace(microsecond=5)))
    assert CREATED_AT.startswith("2024-05-01T12:00:00")


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
