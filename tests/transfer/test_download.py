"""download_package against real HTTP servers on loopback.

* nginx (real Range / If-Range semantics, ETags that are not SHA-256 based),
* a scripted ``http.server`` source that behaves like a DP (``ETag: "<sha256>"``)
  but can cut the connection, answer 503 / 416 / 404 / 500, or send corrupt
  bytes, and records every request it gets.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from peerdp.content.manifest import Manifest, ManifestFile
from peerdp.content.objects import EMPTY_SHA256, ObjectStore
from peerdp.transfer import download, fastpath
from peerdp.transfer.download import (
    DownloadFailed,
    Source,
    download_package,
    fetch_manifest,
)
from peerdp.transfer.throttle import TokenBucket
from tests.helpers.logs import captured_log

NOW = "2024-05-01T12:00:00Z"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_manifest(package_id: str, files: dict[str, bytes], version: int = 1) -> Manifest:
    entries = tuple(ManifestFile(p, len(d), sha(d)) for p, d in sorted(files.items()))
    return Manifest(package_id, version, NOW, entries)


def url_path(manifest: Manifest, path: str) -> str:
    return f"/content/{manifest.package_id}/{manifest.source_version}/files/{path}"


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(tmp_path / "store")


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One client for most tests (creating one costs ~50 ms of TLS set-up)."""
    with httpx.Client(timeout=10.0) as client:
        yield client


# -- nginx -----------------------------------------------------------------------


@dataclass
class Nginx:
    base_url: str
    root: Path
    access_log: Path

    def publish(self, manifest: Manifest, files: dict[str, bytes]) -> None:
        base = self.root / "content" / manifest.package_id / str(manifest.source_version)
        for rel, data in files.items():
            target = base / "files" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (base / "manifest").write_bytes(manifest.to_bytes())

    def requests(self) -> list[list[str]]:
        """Logged requests as [uri, Range, If-Range, status]."""
        text = self.access_log.read_text() if self.access_log.exists() else ""
        return [line.split("|") for line in text.splitlines()]


NGINX_CONF = """
{user}
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    default_type application/octet-stream;
    log_format probe escape=none '$request_uri|$http_range|$http_if_range|$status';
    access_log {tmp}/access.log probe;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    sendfile on;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(binary):
        pytest.skip("nginx is not installed")
    tmp = tmp_path_factory.mktemp("nginx")
    root = tmp / "www"
    root.mkdir()
    port = free_port()
    # As root, nginx workers would drop to "nobody" and could not read tmp dirs.
    user = "user root;" if os.geteuid() == 0 else ""
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(user=user, tmp=tmp, port=port, root=root))
    proc = subprocess.Popen(
        [
            binary,
            "-p",
            str(tmp),
            "-c",
            str(conf),
            "-e",
            str(tmp / "error.log"),
            "-g",
            "daemon off;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_port(port, proc)
        yield Nginx(f"http://127.0.0.1:{port}", root, tmp / "access.log")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"nginx exited: {err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nginx did not start")


# -- scripted DP-like source -------------------------------------------------------------


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class Script:
    files: dict[str, bytes] = field(default_factory=dict)
    plan: dict[str, list[str]] = field(default_factory=dict)  # url path -> behaviours, in order
    always: str = "ok"  # behaviour once the plan for a path is used up
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_behaviour(self, path: str) -> str:
        with self.lock:
            steps = self.plan.get(path)
            return steps.pop(0) if steps else self.always


class ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ScriptedHTTPServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        script = self.server.script
        path = unquote(urlsplit(self.path).path)
        script.seen.append(Seen(path, {k.lower(): v for k, v in self.headers.items()}))
        behaviour = script.next_behaviour(path)
        data = script.files.get(path)
        if data is None or behaviour == "404":
            return self._empty(404)
        if behaviour == "500":
            return self._empty(500)
        if behaviour.startswith("503"):
            return self._empty(503, {"Retry-After": behaviour.partition(":")[2] or "1"})
        if behaviour == "416":
            return self._empty(416, {"Content-Range": f"bytes */{len(data)}"})
        self._serve(data, behaviour)

    def _serve(self, data: bytes, behaviour: str) -> None:
        etag = '"not-the-sha"' if behaviour == "other-etag" else f'"{sha(data)}"'
        if behaviour == "corrupt":
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        start, status = self._range(len(data), etag)
        headers = {"ETag": etag, "Accept-Ranges": "bytes"}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        if behaviour.startswith(("cut:", "stall:")):
            self.wfile.write(body[: int(behaviour.partition(":")[2])])
            self.wfile.flush()
            if behaviour.startswith("stall:"):
                time.sleep(2)  # longer than the client's read timeout
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)

    def _range(self, size: int, etag: str) -> tuple[int, int]:
        """RFC 9110: honour `Range: bytes=N-` unless If-Range does not match."""
        wanted = self.headers.get("Range", "")
        if_range = self.headers.get("If-Range")
        if not wanted.startswith("bytes=") or (if_range is not None and if_range != etag):
            return 0, 200
        return int(wanted[6:].split("-")[0]), 206

    def _empty(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()


class ScriptedHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    script: Script


@dataclass
class Scripted:
    source: Source
    script: Script

    def publish(self, manifest: Manifest, files: dict[str, bytes]) -> None:
        for rel, data in files.items():
            self.script.files[url_path(manifest, rel)] = data

    def requests_for(self, manifest: Manifest, rel: str) -> list[Seen]:
        return [s for s in self.script.seen if s.path == url_path(manifest, rel)]


@pytest.fixture
def scripted() -> Iterator[Iterator[Scripted]]:
    servers: list[ScriptedHTTPServer] = []

    def make() -> Iterator[Scripted]:
        while True:
            httpd = ScriptedHTTPServer(("127.0.0.1", 0), ScriptedHandler)
            httpd.script = Script()
            servers.append(httpd)
            threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
            port = httpd.server_address[1]
            name = f"scripted-{len(servers)}"
            yield Scripted(Source(name, f"http://127.0.0.1:{port}"), httpd.script)

    yield make()
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


# -- tests: the happy path and reuse --------------------------------------------------------


def test_downloads_and_verifies_every_file_from_nginx(
    nginx: Nginx, store: ObjectStore, read_path: str
) -> None:
    files = {
        "setup.exe": os.urandom(150_000),
        "data/cab 1#?.cab": os.urandom(70_000),
        "data/empty.txt": b"",
    }
    manifest = make_manifest("PS100001", files)
    nginx.publish(manifest, files)

    report = download_package(manifest, [Source("dp1", nginx.base_url)], store)

    assert all(store.verify(f.sha256) for f in manifest.files)
    assert (report.files_downloaded, report.files_reused) == (3, 0)
    assert report.bytes_by_source == {"dp1": 220_000}
    assert report.failures == []
    assert not any(store.partial_dir.iterdir())
    # The empty file needs no request.
    assert not any("empty" in r[0] for r in nginx.requests())


def test_held_files_make_no_request(nginx: Nginx, store: ObjectStore, http: httpx.Client) -> None:
    runtime, app = os.urandom(40_000), os.urandom(30_000)
    manifest = make_manifest("PS100002", {"vcredist.exe": runtime, "app.msi": app, "dup": app})
    nginx.publish(manifest, {"vcredist.exe": runtime, "app.msi": app, "dup": app})
    store.add_stream([runtime])  # held from another package

    report = download_package(manifest, [Source("dp1", nginx.base_url)], store, client=http)
    mine = [r[0] for r in nginx.requests() if "/PS100002/" in r[0]]
    assert len(mine) == 1  # app.msi once; its duplicate and the runtime are reused
    assert (report.files_downloaded, report.files_reused) == (1, 2)
    assert report.bytes_reused == 70_000
    assert report.network_bytes == 30_000

    again = download_package(manifest, [Source("dp1", nginx.base_url)], store, client=http)
    assert len([r for r in nginx.requests() if "/PS100002/" in r[0]]) == 1
    assert (again.files_downloaded, again.files_reused, again.network_bytes) == (0, 3, 0)


def test_verify_reused_fetches_a_damaged_object_again(
    nginx: Nginx, store: ObjectStore, http: httpx.Client
) -> None:
    data = os.urandom(20_000)
    manifest = make_manifest("PS100003", {"a.bin": data})
    nginx.publish(manifest, {"a.bin": data})
    path = store.path(store.add_stream([data]).sha256)
    os.chmod(path, 0o644)
    path.write_bytes(b"bit rot" + data[7:])

    report = download_package(
        manifest, [Source("dp1", nginx.base_url)], store, verify_reused=True, client=http
    )
    assert report.files_downloaded == 1
    assert store.verify(sha(data))


def test_sends_bearer_token_per_source(
    scripted: Iterator[Scripted], store: ObjectStore, http: httpx.Client
) -> None:
    dp = next(scripted)
    files = {"a.bin": b"x" * 1000}
    manifest = make_manifest("PS100004", files)
    dp.publish(manifest, files)
    download_package(
        manifest, [dp.source], store, token_for=lambda s: f"token-for-{s.name}", client=http
    )
    [seen] = dp.requests_for(manifest, "a.bin")
    assert seen.headers["authorization"] == f"Bearer token-for-{dp.source.name}"
    assert seen.headers["accept-encoding"] == "identity"


# -- tests: resume ---------------------------------------------------------------------------


# Big files are read from the socket in big pieces and written and hashed on helper
# threads ("socket"; with pieces of an odd small size, so a body spans many of them
# and a cut falls inside one); every path must keep each byte received before a cut.
READ_PATHS = {"inline": (1 << 40, 1 << 20), "socket": (0, 1 << 20), "socket-small": (0, 7001)}


@pytest.fixture(params=list(READ_PATHS))
def read_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    pipeline_min, read_bytes = READ_PATHS[request.param]
    monkeypatch.setattr(download, "PIPELINE_MIN_BYTES", pipeline_min)
    monkeypatch.setattr(fastpath, "SOCKET_READ_BYTES", read_bytes)
    return str(request.param)


@pytest.mark.parametrize("cut", ["cut", "stall"])
def test_resumes_after_cut_connection_from_partial_length(
    scripted: Iterator[Scripted], store: ObjectStore, read_path: str, cut: str
) -> None:
    dp = next(scripted)
    data = os.urandom(200_000)
    manifest = make_manifest("PS100005", {"big.bin": data})
    dp.publish(manifest, {"big.bin": data})
    dp.script.plan[url_path(manifest, "big.bin")] = [f"{cut}:50000"]
    sink = RecordingProgress()

    with httpx.Client(timeout=httpx.Timeout(10.0, read=0.5)) as http:
        report = download_package(
            manifest,
            [dp.source],
            store,
            progress=sink,
            round_backoff_s=0.0,
            retry_after_cap_s=0.05,
            client=http,
        )

    first, second = dp.requests_for(manifest, "big.bin")
    assert "range" not in first.headers
    assert second.headers["range"] == "bytes=50000-"
    assert second.headers["if-range"] == f'"{sha(data)}"'
    assert report.bytes_by_source == {dp.source.name: 200_000}  # nothing fetched twice
    assert "connection error" in report.failures[0].reason
    assert store.verify(sha(data))
    assert (sink.total, sink.advanced, sink.finished) == (200_000, 200_000, True)


def test_resumes_a_partial_left_by_an_earlier_run(
    scripted: Iterator[Scripted], store: ObjectStore, http: httpx.Client
) -> None:
    dp = next(scripted)
    data = os.urandom(100_000)
    manifest = make_manifest("PS100006", {"a.bin": data})
    dp.publish(manifest, {"a.bin": data})
    store.partial_path(sha(data)).write_bytes(data[:30_000])

    report = download_package(manifest, [dp.source], store, client=http)
    [seen] = dp.requests_for(manifest, "a.bin")
    assert seen.headers["range"] == "bytes=30000-"
    assert report.network_bytes == 70_000
    assert store.verify(sha(data))


def test_a_download_logs_its_start_progress_resume_and_end(
    scripted: Iterator[Scripted], store: ObjectStore, http: httpx.Client
) -> None:
    dp = next(scripted)
    data = os.urandom(100_000)
    manifest = make_manifest("PS100016", {"a.bin": data, "held.txt": b"held already"})
    dp.publish(manifest, {"a.bin": data, "held.txt": b"held already"})
    store.add_stream([b"held already"])
    store.partial_path(sha(data)).write_bytes(data[:30_000])
    received: list[int] = []

    with captured_log() as log:
        download_package(
            manifest,
            [dp.source],
            store,
            client=http,
            on_received=received.append,
            progress_log_s=0.0,  # every piece: each progress line can be checked
        )

    ids = {"package_id": "PS100016", "source_version": 1}
    [started] = log.events("download started")
    assert started | ids == started
    assert (started["files"], started["bytes_total"]) == (1, 100_000)
    assert (started["files_held"], started["bytes_held"]) == (1, len(b"held already"))
    assert started["sources"] == [dp.source.name]
    [resumed] = log.events("download resumed")
    assert resumed | ids == resumed
    assert (resumed["path"], resumed["offset"], resumed["size"]) == ("a.bin", 30_000, 100_000)
    progress = [e["bytes_done"] for e in log.events("download progress")]
    assert progress and progress == sorted(progress) and progress[-1] == 100_000
    [verified] = log.events("download verified")
    assert verified["network_bytes"] == 70_000 == sum(received)
    assert verified["bytes_by_source"] == {dp.source.name: 70_000}


def test_nginx_etag_mismatch_on_if_range_restarts_from_zero(
    nginx: Nginx, store: ObjectStore, http: httpx.Client
) -> None:
    data = os.urandom(80_000)
    manifest = make_manifest("PS100007", {"a.bin": data})
    nginx.publish(manifest, {"a.bin": data})
    store.partial_path(sha(data)).write_bytes(data[:20_000])

    report = download_package(manifest, [Source("dp1", nginx.base_url)], store, client=http)

    [(_uri, rng, if_range, status)] = [r for r in nginx.requests() if "/PS100007/" in r[0]]
    assert (rng, if_range) == ("bytes=20000-", f'"{sha(data)}"')
    assert status == "200"  # nginx's own ETag does not match: whole file again
    assert report.network_bytes == 80_000
    assert store.verify(sha(data))


def test_416_discards_partial_and_restarts(
    scripted: Iterator[Scripted], store: ObjectStore, http: httpx.Client
) -> None:
    dp = next(scripted)
    data = os.urandom(50_000)
    manifest = make_manifest("PS100008", {"a.bin": data})
    dp.publish(manifest, {"a.bin": data})
    dp.script.plan[url_path(manifest, "a.bin")] = ["416"]
    store.partial_path(sha(data)).write_bytes(data[:10_000])

    download_package(manifest, [dp.source], store, client=http)
    first, second = dp.requests_for(manifest, "a.bin")
    assert first.headers["range"] == "bytes=10000-"
    assert "range" not in second.headers
    assert store.verify(sha(data))


def test_complete_partial_is_committed_without_a_request(
    scripted: Iterator[Scripted], store: ObjectStore, http: httpx.Client
) -> None:
    dp = next(scripted)
    data = os.urandom(10_000)
    manifest = make_manifest("PS100009", {"a.bin": data})
    dp.publish(manifest, {"a.bin": data})
    store.partial_path(sha(data)).write_bytes(data)
    report = download_package(manifest, [dp.source], store, client=http)
    assert dp.requests_for(manifest, "a.bin") == []
    assert report.files_downloaded == 1 and store.verify(sha(data))


# -- tests: failover ---------------------------------------------------------------------------


def test_corrupt_source_falls_back_to_next_source(
    scripted: Iterator[Scripted], nginx: Nginx, store: ObjectStore, http: httpx.Client
) -> None:
    bad = next(scripted)
    bad.script.always = "corrupt"
    data = os.urandom(60_000)
    manifest = make_manifest("PS10000A", {"a.bin": data})
    bad.publish(manifest, {"a.bin": data})
    nginx.publish(manifest, {"a.bin": data})

    report = download_package(
        manifest,
        [bad.source, Source("good", nginx.base_url)],
        store,
        round_backoff_s=0.0,
        retry_after_cap_s=0.05,
        client=http,
    )
    assert [f.reason.split(":")[0] for f in report.failures] == ["sha256 mismatch"]
    assert report.bytes_by_source == {bad.source.name: 60_000, "good": 60_000}
    assert store.verify(sha(data))


def test_corrupt_content_never_becomes_visible(
    scripted: Iterator[Scripted], store: ObjectStore, http: httpx.Client
) -> None:
    bad = next(scripted)
    bad.script.always = "corrupt"
    data = os.urandom(30_000)
    manifest = make_manifest("PS10000B", {"a.bin": data})
    bad.publish(manifest, {"a.bin": data})

    with pytest.raises(DownloadFailed, match="sha256 mismatch"):
        download_package(
            manifest,
            [bad.source],
            store,
            max_rounds=2,
            round_backoff_s=0.0,
            retry_after_cap_s=0.05,
            client=http,
        )
    assert not store.has(sha(data))
    assert list(store.iter_objects()) == []
    assert not any(store.partial_dir.iterdir())


def test_busy_source_is_skipped_then_retried_after_retry_after(
    scripted: Iterator[Scripted], store: ObjectStore, http: httpx.Client
) -> None:
    busy, other = next(scripted), next(scripted)
    files = {"a.bin": os.urandom(20_000), "b.bin": os.urandom(20_000)}
    manifest = make_manifest("PS10000C", files)
    busy.publish(manifest, files)
    other.publish(manifest, files)
    busy.script.plan[url_path(manifest, "a.bin")] = ["503:1"]
    other.script.always = "500"

    started = time.monotonic()
    report = download_package(
        manifest,
        [busy.source, other.source],
        store,
        round_backoff_s=0.0,
        retry_after_cap_s=0.3,
        client=http,
    )
    elapsed = time.monotonic() - started

    assert [f.reason for f in report.failures] == ["busy (503)", "HTTP 500"]
    assert elapsed >= 0.25  # waited (capped) Retry-After before asking the busy DP again
    assert report.bytes_by_source == {busy.source.name: 40_000, other.source.name: 0}
    assert all(store.verify(f.sha256) for f in manifest.files)


def test_all_sources_failing_raises_with_reasons(
    scripted: Iterator[Scripted], store: ObjectStore, http: httpx.Client
) -> None:
    empty, broken = next(scripted), next(scripted)
    broken.script.always = "500"
    data = b"payload" * 100
    manifest = make_manifest("PS10000D", {"a.bin": data})
    broken.publish(manifest, {"a.bin": data})
    dead = Source("dead", f"http://127.0.0.1:{free_port()}")

    with pytest.raises(DownloadFailed) as info:
        download_package(
            manifest,
            [empty.source, dead, broken.source],
            store,
            max_rounds=2,
            round_backoff_s=0.0,
            retry_after_cap_s=0.05,
            client=http,
        )

    reasons = info.value.reasons_by_source
    assert reasons[empty.source.name] == ["a.bin: not found (404)"] * 2
    assert all("connection error" in r for r in reasons["dead"]) and len(reasons["dead"]) == 2
    assert reasons[broken.source.name] == ["a.bin: HTTP 500"] * 2
    assert "after 2 round(s)" in str(info.value)
    assert not store.has(sha(data))


def test_no_sources_fails_clearly(store: ObjectStore) -> None:
    manifest = make_manifest("PS10000E", {"a.bin": b"x"})
    with pytest.raises(DownloadFailed, match="no sources"):
        download_package(manifest, [], store)


# -- tests: bandwidth and progress ---------------------------------------------------------


def test_bandwidth_limit_is_respected(nginx: Nginx, store: ObjectStore, http: httpx.Client) -> None:
    files = {"a.bin": os.urandom(120_000), "b.bin": os.urandom(120_000)}
    manifest = make_manifest("PS10000F", files)
    nginx.publish(manifest, files)
    limit = 400_000

    report = download_package(
        manifest, [Source("dp1", nginx.base_url)], store, bandwidth_limit=limit, client=http
    )
    assert report.elapsed_s >= 240_000 / limit * 0.8


def test_token_bucket_paces_to_rate() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    bucket = TokenBucket(1000, clock=lambda: now[0], sleep=sleep)
    for _ in range(10):
        bucket.consume(500)
    assert now[0] == pytest.approx(5.0)
    with pytest.raises(ValueError):
        TokenBucket(0)


@dataclass
class RecordingProgress:
    total: int = -1
    advanced: int = 0
    finished: bool = False

    def start(self, total_bytes: int) -> None:
        self.total = total_bytes

    def advance(self, n: int) -> None:
        self.advanced += n

    def done(self) -> None:
        self.finished = True


# -- tests: manifest fetch -----------------------------------------------------------------------


def test_fetch_manifest(nginx: Nginx, http: httpx.Client) -> None:
    manifest = make_manifest("PS100010", {"a.bin": b"abc"})
    nginx.publish(manifest, {"a.bin": b"abc"})
    raw = fetch_manifest(Source("dp1", nginx.base_url), "PS100010", 1, "tok", client=http)
    assert Manifest.from_bytes(raw) == manifest
    with pytest.raises(DownloadFailed, match="not found"):
        fetch_manifest(Source("dp1", nginx.base_url), "PS100010", 2, None, client=http)


def test_empty_file_only_package_needs_no_source(store: ObjectStore, http: httpx.Client) -> None:
    manifest = Manifest("PS100011", 1, NOW, (ManifestFile("empty", 0, EMPTY_SHA256),))
    report = download_package(manifest, [Source("none", "http://127.0.0.1:9")], store, client=http)
    assert report.files_downloaded == 1 and store.has(EMPTY_SHA256)


def test_source_that_delivered_is_asked_first_for_the_next_files(
    scripted: Iterator[Scripted], store: ObjectStore, http: httpx.Client
) -> None:
    gone, good = next(scripted), next(scripted)
    files = {f"f{i}.bin": os.urandom(5_000) for i in range(3)}
    manifest = make_manifest("PS100012", files)
    good.publish(manifest, files)  # `gone` holds nothing: 404

    report = download_package(manifest, [gone.source, good.source], store, client=http)
    assert len(gone.script.seen) == 1
    assert report.bytes_by_source == {gone.source.name: 0, good.source.name: 15_000}
    with pytest.raises(ValueError, match="bandwidth"):
        download_package(manifest, [good.source], store, bandwidth_limit=0, client=http)
