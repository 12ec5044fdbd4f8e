"""Real peerdp processes for tests: the command line, a site server, stopping cleanly."""

from __future__ import annotations

import os
import re
import secrets
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# Whether the test being run is marked slow; None outside a test (collection, scripts).
# tests/conftest.py sets it before each test's fixtures are set up.
_running_slow_test: bool | None = None


def running_test_is_slow(slow: bool | None) -> None:
    """Tell the helpers whether the test about to run is marked slow (None: no test)."""
    global _running_slow_test
    _running_slow_test = slow


def require_slow(what: str) -> None:
    """Refuse to start a real process or server from a test not marked slow, so that
    `pytest -m "not slow"` stays a fast inner loop."""
    if _running_slow_test is False:
        raise RuntimeError(
            f"{what} from a test not marked slow: add `pytestmark = pytest.mark.slow` to the "
            "module (or @pytest.mark.slow to the test), or name the fixture that starts it in "
            "PROCESS_FIXTURES in tests/conftest.py"
        )


def refuse_servers_unless_slow(*classes: type) -> None:
    """Make constructing any of `classes` (real servers) fail in a test not marked slow,
    whichever fixture or helper builds one."""
    for cls in classes:
        init = cls.__init__

        def guarded(self: Any, *args: Any, _init: Any = init, _cls: type = cls, **kw: Any) -> None:
            require_slow(f"a {_cls.__module__}.{_cls.__qualname__} starts")
            _init(self, *args, **kw)

        cls.__init__ = guarded  # type: ignore[misc]


def peerdp_cmd(*args: str) -> list[str]:
    """The command line of `peerdp ARGS` run by this interpreter (slow tests only)."""
    require_slow(f"`peerdp {' '.join(args[:2])}` runs as a real process")
    return [sys.executable, "-m", "peerdp", *args]


def stop_process(
    process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15
) -> int:
    """Send `sig` (SIGTERM), then SIGKILL if it is still running after `timeout` seconds;
    the exit code."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@dataclass
class SiteProcess:
    url: str
    admin_token: str
    data_dir: Path
    db_url: str
    process: subprocess.Popen[bytes]
    # What the site's HTTPS certificate is checked with (a path to a CA file, or True).
    verify: str | bool = True
    # The lines it wrote to stderr (its log), as they come.
    lines: list[str] = field(default_factory=list)

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url + "/api/v1",
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
            verify=ssl_verify(self.verify),
        )

    def stop(self) -> int:
        return stop_process(self.process)


def ssl_verify(verify: str | bool) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify


def start_site(
    data_dir: Path,
    db_url: str,
    *,
    extra_env: dict[str, str] | None = None,
    verify: str | bool = True,
    args: tuple[str, ...] = (),
    preexec_fn: Callable[[], None] | None = None,
) -> SiteProcess:
    """Start `peerdp site serve` (with `args`) on a free loopback port and wait until it
    answers (over HTTPS when `extra_env` names a certificate; `verify` is its CA file).
    `preexec_fn` runs in the child before it starts (e.g. to set a resource limit)."""
    token = secrets.token_urlsafe(16)
    env = {**os.environ, "PEERDP_ADMIN_TOKEN": token, **(extra_env or {})}
    process = popen_site(data_dir, db_url, env, args, preexec_fn)
    assert process.stderr is not None
    url = None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while url is None and time.monotonic() < deadline:
        line = process.stderr.readline().decode()
        if not line and process.poll() is not None:
            raise RuntimeError(f"site server exited with {process.returncode}")
        lines.append(line)
        if found := re.search(r"listening on (https?://[^\s\"]+)", line):
            url = found[1]
    assert url, "site server did not report its URL"
    _drain(process, lines)
    while time.monotonic() < deadline:
        try:
            health = httpx.get(url + "/health", timeout=2, verify=ssl_verify(verify))
            if health.status_code == 200:
                return SiteProcess(url, token, data_dir, db_url, process, verify, lines)
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("site server did not become healthy")


def popen_site(
    data_dir: Path,
    db_url: str,
    env: dict[str, str],
    args: tuple[str, ...] = (),
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.Popen[bytes]:
    """`peerdp site serve ARGS` on a free loopback port, its stderr (where it says its URL)
    piped."""
    return subprocess.Popen(
        peerdp_cmd(
            *("site", "serve", "--data-dir", str(data_dir), "--db", db_url, "--port", "0"), *args
        ),
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        preexec_fn=preexec_fn,
    )


def _drain(process: subprocess.Popen[bytes], lines: list[str]) -> None:
    """Keep reading the server's stderr into `lines` so it never blocks on a full pipe."""

    def pump() -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            line = raw.decode(errors="replace")
            lines.append(line)
            if os.environ.get("PEERDP_TEST_VERBOSE"):
                sys.stderr.write(line)

    threading.Thread(target=pump, daemon=True).start()
