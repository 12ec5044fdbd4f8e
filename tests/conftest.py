"""Shared fixtures: databases (SQLite and PostgreSQL) and real site-server processes.

Every database test runs on both back ends; each test gets a fresh PostgreSQL schema
of its own (see tests/helpers/postgres.py), so tests can run in parallel. Helpers the
tests import live in tests/helpers/, not here.

Tests that start real processes or servers are marked `slow`, so that
`pytest -m "not slow"` is a fast inner loop: a test using one of PROCESS_FIXTURES is
marked here, and `peerdp_cmd`, a uvicorn server or a socket server refuse to start
from a test that is not marked.
"""

from __future__ import annotations

import socketserver
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from tests.helpers.postgres import pg_schema
from tests.helpers.processes import (
    SiteProcess,
    refuse_servers_unless_slow,
    running_test_is_slow,
)
from tests.helpers.sites import module_site

# Fixtures that start a real process or server (by name, wherever they are defined): a
# test that uses one, directly or through another fixture, is slow.
PROCESS_FIXTURES = frozenset(
    {
        "site_server",  # `peerdp site serve` (here, and a SQLite-only one in tests/dp)
        "small_site",  # a site server with a small body limit (tests/site/test_bad_input.py)
        "limited_site",  # a site server with small upload limits (tests/site/test_upload_limits)
        "server",  # uvicorn DP content server (tests/dp), site server (test_distribution)
        "limited",  # uvicorn DP content servers with a transfer limit (tests/dp)
        "stalling",
        "dp",  # `peerdp dp serve` (tests/dp/test_standard_dp.py)
        "nginx",  # tests/transfer
        "scripted",  # http.server threads that cut, stall or corrupt (tests/transfer)
        "served",  # a uvicorn server built by dp.zerocopy.server_config (tests/dp)
        "secure_office",  # a site, DPs and clients over HTTPS (tests/e2e/test_tls.py)
        "guarded_dp",  # `peerdp dp serve --metrics-token` (tests/dp/test_metrics.py)
        "guarded_site",  # `peerdp site serve` guarding /metrics (tests/site/test_exposure.py)
    }
)


def pytest_configure(config: pytest.Config) -> None:
    refuse_servers_unless_slow(uvicorn.Server, socketserver.BaseServer)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        uses = PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if uses and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(tryfirst=True)  # before the test's fixtures start anything
def pytest_runtest_setup(item: pytest.Item) -> None:
    running_test_is_slow(item.get_closest_marker("slow") is not None)


def pytest_runtest_teardown(item: pytest.Item) -> None:
    running_test_is_slow(None)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A clean, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'site.db'}"
        return
    with pg_schema("t") as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SiteProcess]:
    """A real site server per module and database kind (tests share it: use unique names)."""
    with module_site(request.param, tmp_path_factory) as server:
        yield server
