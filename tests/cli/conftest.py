"""Fixtures of the CLI tests that drive a real site server (one per module and database)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.cli.support import Cli
from tests.helpers.processes import SiteProcess


@pytest.fixture(scope="module")
def cli(site_server: SiteProcess) -> Cli:
    """`peerdp ...` as a process against the module's site server."""
    return Cli.for_site(site_server)


@pytest.fixture(scope="module")
def api(site_server: SiteProcess) -> Iterator[httpx.Client]:
    """The admin API of the module's site server."""
    with site_server.admin() as client:
        yield client
