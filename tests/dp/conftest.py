"""Fixtures for the DP content tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .support import DP_SECRET, Server, make_files, serve_store


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One DP content server per test module (default limit of 10 transfers)."""
    yield from serve_store(
        tmp_path_factory.mktemp("dp"),
        make_files(),
        max_transfers=10,
        extra=lambda token: token == DP_SECRET,
    )
