"""Shared fixtures: databases (SQLite and PostgreSQL) and real site-server processes.

Every database test runs on both back ends. PostgreSQL comes from PEERDP_TEST_PG
(default: the local server at 127.0.0.1:5432, database `test`); each test gets a
fresh schema of its own, so tests can run in parallel.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

PG_URL = os.environ.get("PEERDP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_available() -> bool:
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@contextmanager
def pg_schema(prefix: str) -> Iterator[str]:
    """The URL of a fresh schema on the test PostgreSQL, dropped afterwards. Without a
    reachable PostgreSQL the test is skipped, except in CI, where it fails."""
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but {PG_URL} does not answer")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    schema = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield pg_schema_url(schema)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A clean, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'site.db'}"
        return
    with pg_schema("t") as url:
        yield url


@dataclass
class SiteProcess:
    url: str
    admin_token: str
    data_dir: Path
    db_url: str
    process: subprocess.Popen[bytes]

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url + "/api/v1",
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
        )

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def peerdp_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "peerdp.cli.main", *args]


def start_site(
    data_dir: Path, db_url: str, *, extra_env: dict[str, str] | None = None
) -> SiteProcess:
    """Start `peerdp site serve` on a free loopback port and wait until it answers."""
    token = secrets.token_urlsafe(16)
    env = {**os.environ, "PEERDP_ADMIN_TOKEN": token, **(extra_env or {})}
    process = subprocess.Popen(
        peerdp_cmd("site", "serve", "--data-dir", str(data_dir), "--db", db_url, "--port", "0"),
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    assert process.stderr is not None
    url = None
    deadline = time.monotonic() + 60
    while url is None and time.monotonic() < deadline:
        line = process.stderr.readline().decode()
        if not line and process.poll() is not None:
            raise RuntimeError(f"site server exited with {process.returncode}")
        if found := re.search(r"listening on (http://\S+)", line):
            url = found[1]
    assert url, "site server did not report its URL"
    _drain(process)
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return SiteProcess(url, token, data_dir, db_url, process)
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("site server did not become healthy")


def _drain(process: subprocess.Popen[bytes]) -> None:
    """Keep reading the server's stderr so it never blocks on a full pipe."""
    import threading

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if os.environ.get("PEERDP_TEST_VERBOSE"):
                sys.stderr.write(line.decode(errors="replace"))

    threading.Thread(target=pump, daemon=True).start()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SiteProcess]:
    """A real site server per module and database kind (tests share it: use unique names)."""
    data_dir = tmp_path_factory.mktemp("site")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{data_dir / 'site.db'}"
        else:
            url = stack.enter_context(pg_schema("s"))
        server = start_site(data_dir, url)
        stack.callback(server.stop)
        yield server


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The JSON of an answer that must have `status` (None for an empty body)."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


def tar_of(files: dict[str, bytes]) -> bytes:
    """A tar archive of regular files (relative path -> content), as packages are uploaded."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30, every: float = 0.1) -> Any:
    """The first truthy result of `check`, asked every `every` seconds; fails after
    `timeout` saying what it waited for."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)
