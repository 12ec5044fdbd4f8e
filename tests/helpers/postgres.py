"""The test PostgreSQL: its URL and a fresh schema per test.

PostgreSQL comes from PEERDP_TEST_PG (default: the local server at 127.0.0.1:5432,
database `test`); each test gets a schema of its own, so tests can run in parallel.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

PG_URL = os.environ.get("PEERDP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def pg_available() -> bool:
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def pg_schema_url(schema: str) -> str:
    """The URL of `schema`: its connections search it and are named after it."""
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}&application_name={schema}"


@contextmanager
def pg_schema(prefix: str) -> Iterator[str]:
    """The URL of a fresh schema on the test PostgreSQL, dropped afterwards. Without a
    reachable PostgreSQL the test is skipped, except in CI, where it fails."""
    if not pg_available():
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
            # An app made in the test process may keep its pool's connections until it is
            # collected (the site's own collector settings make that rare): ended here, so
            # a suite of such tests never runs the server out of connections.
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s AND pid <> pg_backend_pid()",
                (schema,),
            )
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
