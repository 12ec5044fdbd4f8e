"""Helpers for the admin API tests: tar bodies, the content library, raw server starts."""

from __future__ import annotations

import io
import os
import re
import secrets
import signal
import socket
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.helpers.api import ok
from tests.helpers.processes import popen_site

TAR = {"Content-Type": "application/x-tar"}


def make_tar(files: dict[str, bytes], *extra: tuple[tarfile.TarInfo, bytes]) -> bytes:
    """A tar archive of `files` (path -> content), then any `extra` raw members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path, content in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(content)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(content))
        for info, content in extra:
            info.size = len(content) if info.isreg() else 0
            archive.addfile(info, io.BytesIO(content) if info.isreg() else None)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o644
    return info


def unique_files(n: int = 2) -> dict[str, bytes]:
    """Files whose content no other test has: the library counts stay exact."""
    salt = secrets.token_hex(16)
    files = {"setup.cmd": f"install {salt}\n".encode()}
    for i in range(1, n):
        files[f"data/part-{i}.bin"] = f"{salt}:{i}\n".encode() * (i * 100)
    return files


def library_objects(data_dir: Path) -> set[str]:
    """The digests held in the site's content library (`<data_dir>/library/objects`)."""
    root = data_dir / "library" / "objects"
    if not root.is_dir():
        return set()
    return {p.name for p in root.glob("*/*") if p.is_file()}


def refused(response: httpx.Response, status: int, *words: str) -> str:
    """Assert a 4xx with a `detail` saying what is wrong (mentioning every word)."""
    assert response.status_code == status, f"wanted {status}, got {response.status_code}: " + (
        response.text
    )
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail.strip(), response.text
    for word in words:
        assert word.lower() in detail.lower(), f"{word!r} not in detail {detail!r}"
    return detail


def new_package(admin: httpx.Client, name: str, **fields: Any) -> dict[str, Any]:
    package: dict[str, Any] = ok(admin.post("/packages", json={"name": name, **fields}), 201)
    return package


def upload(admin: httpx.Client, package_id: str, body: bytes) -> httpx.Response:
    return admin.post(f"/packages/{package_id}/versions", content=body, headers=TAR)


def port_is_free(url: str) -> bool:
    found = re.search(r"//([\d.]+):(\d+)", url)
    assert found, url
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As a server binds it: TIME_WAIT left by closed connections does not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((found[1], int(found[2])))
        except OSError:
            return False
    return True


@dataclass
class RawSite:
    """A `peerdp site serve` started with exactly the environment given."""

    process: subprocess.Popen[bytes]
    url: str
    token_line: str
    lines: list[str]

    def stop(self) -> int:
        """SIGTERM and wait; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("site server ignored SIGTERM for 20 s") from None


def launch(data_dir: Path, db_url: str, env: dict[str, str]) -> RawSite:
    """Start a site server on a free port; wait for its URL, token line and health."""
    process = popen_site(data_dir, db_url, env)
    assert process.stderr is not None
    lines: list[str] = []
    url = token_line = None
    deadline = time.monotonic() + 60
    while (url is None or token_line is None) and time.monotonic() < deadline:
        line = process.stderr.readline().decode()
        if not line:
            rest = process.wait(10)
            raise AssertionError(f"site server exited with {rest}: {''.join(lines)}")
        lines.append(line)
        if found := re.search(r"listening on (http://[^\s\"]+)", line):
            url = found[1]
        if found := re.search(r"(admin token: .+?)(?: +\[peerdp\.serve\])?$", line.strip()):
            token_line = found[1]  # the message, without the log's time, level and logger
    if url is None or token_line is None:
        process.kill()
        raise AssertionError(f"site server did not print its URL and admin token: {lines}")

    def pump() -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            lines.append(raw.decode(errors="replace"))

    threading.Thread(target=pump, daemon=True).start()
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return RawSite(process, url, token_line, lines)
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError("site server did not become healthy")


def env_without_token(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PEERDP_ADMIN_TOKEN"}
    env.update(extra)
    return env
