"""The `slow` marker is hard to forget: starting a real process or server from a test
that is not marked fails at once."""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import uvicorn

from tests.helpers.processes import peerdp_cmd


def test_an_unmarked_test_cannot_start_peerdp() -> None:
    with pytest.raises(RuntimeError, match="not marked slow"):
        peerdp_cmd("site", "serve")


def test_an_unmarked_test_cannot_start_a_server() -> None:
    with pytest.raises(RuntimeError, match="not marked slow"):
        uvicorn.Server(uvicorn.Config(app=None))
    with pytest.raises(RuntimeError, match="not marked slow"):
        ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)


@pytest.mark.slow
def test_a_slow_test_can() -> None:
    assert peerdp_cmd("site", "serve") == [sys.executable, "-m", "peerdp", "site", "serve"]
    ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler).server_close()
