"""Small helpers for talking to a running site or DP over HTTP."""

from __future__ import annotations

import io
import secrets
import tarfile
import time
from collections.abc import Callable
from typing import Any

import httpx


def unique(prefix: str) -> str:
    """A name no other test uses (tests share a server per module)."""
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
