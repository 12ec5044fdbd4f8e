"""Ordinary HTTP clients resume and split downloads from a DP, as any client may.

curl, wget and aria2c run as real processes against a real uvicorn server;
every download must end byte-identical to the source (SHA-256).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .support import PACKAGE, VERSION, Server, sha256

pytestmark = pytest.mark.slow  # curl, wget and aria2c against a real uvicorn server


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} is not installed (apt-get install curl wget aria2)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs them: a missing tool is a broken setup
        pytest.skip(message)
    return path


def file_sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def auth_header(server: Server) -> str:
    return f"Authorization: Bearer {server.token()}"


CUT_AT = 3_000_017


def cut_download(server: Server, out: Path) -> None:
    """A download interrupted mid-body: the reader stops after CUT_AT bytes.

    `head` exits, curl dies on the broken pipe and the server sees the client
    vanish in the middle of the body, as with a dropped WAN link.
    """
    curl = need("curl")
    pipeline = (
        f"{curl} -sS -H '{auth_header(server)}' '{server.url('big.bin')}' "
        f"| head -c {CUT_AT} > '{out}'"
    )
    subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], timeout=60, check=False)
    assert out.stat().st_size == CUT_AT


def test_curl_resumes_a_cut_download(server: Server, tmp_path: Path) -> None:
    curl = need("curl")
    out = tmp_path / "big.bin"
    cut_download(server, out)
    resumed = run([curl, "-sS", "-C", "-", "-H", auth_header(server), "-o", str(out),
                   "-w", "%{http_code}", server.url("big.bin")])  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == "206"
    assert file_sha(out) == sha256(server.files["big.bin"])


def test_curl_resume_with_query_token(server: Server, tmp_path: Path) -> None:
    curl = need("curl")
    data = server.files["big.bin"]
    out = tmp_path / "big.bin"
    out.write_bytes(data[:1234567])  # what an earlier attempt left behind
    url = f"{server.url('big.bin')}?token={server.token()}"
    resumed = run([curl, "-sS", "-C", "-", "-o", str(out), "-w", "%{http_code}", url])
    assert resumed.stdout == "206", resumed.stderr
    assert file_sha(out) == sha256(data)


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [("1000-1999", 1000, 2000), ("-500", -500, None), ("8000000-", 8000000, None)],
)
def test_curl_range(server: Server, tmp_path: Path, spec: str, start: int, end: int | None) -> None:
    curl = need("curl")
    out = tmp_path / "part"
    res = run([curl, "-sS", "-r", spec, "-H", auth_header(server), "-o", str(out),
               "-w", "%{http_code}", server.url("big.bin")])  # fmt: skip
    assert res.stdout == "206", res.stderr
    assert out.read_bytes() == server.files["big.bin"][start:end]


def test_curl_multiple_ranges(server: Server, tmp_path: Path) -> None:
    curl = need("curl")
    data = server.files["big.bin"]
    out = tmp_path / "parts"
    res = run([curl, "-sS", "-r", "0-99,5000-5099", "-H", auth_header(server), "-o", str(out),
               "-w", "%{http_code} %{content_type}", server.url("big.bin")])  # fmt: skip
    status, content_type = res.stdout.split(" ", 1)
    assert status == "206"
    assert content_type.startswith("multipart/byteranges; boundary=")
    body = out.read_bytes()
    n = len(data)
    first = f"Content-Range: bytes 0-99/{n}\r\n\r\n".encode() + data[:100]
    second = f"Content-Range: bytes 5000-5099/{n}\r\n\r\n".encode() + data[5000:5100]
    assert first in body and second in body


def test_wget_continues_a_cut_download(server: Server, tmp_path: Path) -> None:
    wget = need("wget")
    out = tmp_path / "big.bin"  # wget -c names the file after the URL
    cut_download(server, out)
    resumed = run([wget, "-c", "-S", "--header", auth_header(server), "-P", str(tmp_path),
                   server.url("big.bin")])  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "HTTP/1.1 206" in resumed.stderr  # it really resumed, not restarted
    assert file_sha(out) == sha256(server.files["big.bin"])


def test_aria2c_split_download(server: Server, tmp_path: Path) -> None:
    aria2c = need("aria2c")
    log = tmp_path / "aria2.log"
    # Each connection held to 8 MiB/s, so the first cannot take every segment before the
    # others' ranged requests are answered (it did on a busy machine, and none got a 206).
    res = run([aria2c, "-x4", "-s4", "-k1M", "--max-download-limit=8M",
               "--header", auth_header(server),
               "-d", str(tmp_path), "-o", "big.bin", "--file-allocation=none",
               "--summary-interval=0", "--console-log-level=warn",
               f"--log={log}", "--log-level=info", server.url("big.bin")])  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert file_sha(tmp_path / "big.bin") == sha256(server.files["big.bin"])
    # It really split: ranged requests on several connections, answered with 206.
    # (On loopback the first connection often finishes most segments itself.)
    text = log.read_text()
    assert text.count("Range: bytes=") >= 2
    assert text.count("content-range: bytes ") >= 1


def test_aria2c_resumes_with_continue(server: Server, tmp_path: Path) -> None:
    aria2c = need("aria2c")
    data = server.files["big.bin"]
    (tmp_path / "big.bin").write_bytes(data[:3_000_000])
    res = run([aria2c, "-c", "-x2", "-s2", "--header", auth_header(server),
               "-d", str(tmp_path), "-o", "big.bin", "--file-allocation=none",
               "--summary-interval=0", "--console-log-level=warn",
               server.url("big.bin")])  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert file_sha(tmp_path / "big.bin") == sha256(data)


def test_curl_manifest_and_errors(server: Server) -> None:
    curl = need("curl")
    url = f"{server.base_url}/content/{PACKAGE}/{VERSION}/manifest"
    ok = run([curl, "-sS", "-H", auth_header(server), url])
    assert ok.stdout.encode() == server.manifest
    denied = run([curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", url])
    assert denied.stdout == "401"
