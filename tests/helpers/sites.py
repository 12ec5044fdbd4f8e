"""A real site server for a test module, on SQLite or on PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests.helpers.postgres import pg_schema
from tests.helpers.processes import SiteProcess, start_site


@contextlib.contextmanager
def module_site(
    kind: str, tmp_path_factory: pytest.TempPathFactory, extra_env: dict[str, str] | None = None
) -> Iterator[SiteProcess]:
    """A real site server on a new database of `kind` ("sqlite" or "postgresql")."""
    data_dir = tmp_path_factory.mktemp("site")
    with contextlib.ExitStack() as stack:
        if kind == "sqlite":
            url = f"sqlite:///{data_dir / 'site.db'}"
        else:
            url = stack.enter_context(pg_schema("s"))
        server = start_site(data_dir, url, extra_env=extra_env)
        stack.callback(server.stop)
        yield server
