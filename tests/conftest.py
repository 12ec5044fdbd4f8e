"""Shared fixtures: databases (SQLite and PostgreSQL) and real site-server processes.

Every database test runs on both back ends; each test gets a fresh PostgreSQL schema
of its own (see tests/helpers/postgres.py), so tests can run in parallel. Helpers the
tests import live in tests/helpers/, not here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.postgres import pg_schema
from tests.helpers.processes import SiteProcess, start_site


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
    data_dir = tmp_path_factory.mktemp("site")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{data_dir / 'site.db'}"
        else:
            url = stack.enter_context(pg_schema("s"))
        server = start_site(data_dir, url)
        stack.callback(server.stop)
        yield server
