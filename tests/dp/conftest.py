"""Fixtures for the DP content tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from .support import DP_SECRET, Server, make_files, serve_store


@pytest.fixture(scope="module", params=["stream", "zerocopy"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One DP content server per test module and body path (default limit of 10).

    "stream": plain uvicorn, bodies read and sent in chunks; "zerocopy":
    ZeroCopyHttpToolsProtocol, bodies sent with os.sendfile. Every test runs
    against both.
    """
    yield from serve_store(
        tmp_path_factory.mktemp("dp"),
        make_files(),
        max_transfers=10,
        extra=lambda token: token == DP_SECRET,
        zerocopy=request.param == "zerocopy",
    )


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    """A client that sends the server's access token for PACKAGE version VERSION."""
    with httpx.Client(headers=server.auth(), timeout=30) as c:
        yield c
