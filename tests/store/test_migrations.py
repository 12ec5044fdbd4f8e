"""Alembic migrations: they build exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event, inspect, text
from sqlalchemy.exc import IntegrityError

from peerdp.store.db import alembic_config, make_engine, upgrade
from peerdp.store.models import Base


@pytest.fixture
def engine(db_url: str) -> Any:
    engine = make_engine(db_url, pool=False)
    yield engine
    engine.dispose()


def head_revision(engine: Engine) -> str:
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_upgrade_creates_every_table_of_the_models(engine: Engine) -> None:
    assert inspect(engine).get_table_names() == [], "the database must start empty"
    upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert current_revision(engine) == head_revision(engine)


def test_second_upgrade_is_a_no_op(engine: Engine) -> None:
    upgrade(engine)
    schema_before = describe_schema(engine)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        upgrade(engine)
    finally:
        event.remove(engine, "before_cursor_execute", record)

    changes = [
        s
        for s in statements
        if s.lstrip().split(None, 1)[0].upper() in {"CREATE", "ALTER", "DROP", "INSERT", "UPDATE"}
    ]
    assert changes == [], "a second upgrade changed the database"
    assert describe_schema(engine) == schema_before
    assert current_revision(engine) == head_revision(engine)


def test_models_and_migrations_agree(engine: Engine) -> None:
    """What `alembic check` does: autogenerate finds nothing to migrate."""
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "render_as_batch": engine.dialect.name == "sqlite",
            },
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_migrations_have_one_head_and_no_gaps(engine: Engine) -> None:
    scripts = ScriptDirectory.from_config(alembic_config(engine))
    assert len(scripts.get_heads()) == 1
    revisions = list(scripts.walk_revisions())
    assert revisions[-1].down_revision is None, "the oldest migration starts from nothing"
    assert all(r.down_revision is not None for r in revisions[:-1])


def test_waiting_for_prestage_is_a_state_and_on_demand_packages_download(engine: Engine) -> None:
    """0006: the DP-list state waiting_for_prestage, and on-demand packages that did not
    download automatically (a combination now refused) download automatically."""
    scripts = ScriptDirectory.from_config(alembic_config(engine))
    before = scripts.get_revision("0006").down_revision
    assert isinstance(before, str)
    command.upgrade(alembic_config(engine), before)
    insert = text(
        "INSERT INTO packages (id, name, source_version, on_demand, auto_download_branch, "
        "created_at, updated_at) VALUES (:id, :id, 1, :on_demand, :auto, :now, :now)"
    )
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for package_id, on_demand, auto in (
            ("PS100001", True, False),
            ("PS100002", False, False),
            ("PS100003", True, True),
        ):
            conn.execute(
                insert, {"id": package_id, "on_demand": on_demand, "auto": auto, "now": now}
            )
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, auto_download_branch FROM packages ORDER BY id"))
        assert [(i, bool(a)) for i, a in rows] == [
            ("PS100001", True),
            ("PS100002", False),
            ("PS100003", True),
        ]
    checks = inspect(engine).get_check_constraints("package_distribution_points")
    [state] = [c["sqltext"] for c in checks if c["name"] == "ck_package_distribution_points_state"]
    assert "'waiting_for_prestage'" in state and "'installed'" in state


def describe_schema(engine: Engine) -> dict[str, Any]:
    inspector = inspect(engine)
    schema: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        schema[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            ],
            "indexes": sorted(str(sorted(i.items())) for i in inspector.get_indexes(table)),
            "foreign_keys": sorted(
                str(sorted(f.items())) for f in inspector.get_foreign_keys(table)
            ),
            "unique": sorted(
                str(sorted(u.items())) for u in inspector.get_unique_constraints(table)
            ),
        }
    return schema


# -- SQLite specifics -----------------------------------------------------------------


def test_sqlite_runs_in_wal_mode_with_foreign_keys_on(tmp_path: Path) -> None:
    path = tmp_path / "site.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        # Foreign keys are enforced, not just declared.
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO distribution_points (name, kind, bits_enabled, site_code, "
                    "ip_addresses, created_at) "
                    "VALUES ('dp', 'standard', 1, 'NOS', '[]', '2024-01-01 00:00:00')"
                )
            )
    finally:
        engine.dispose()
    # WAL is a property of the database file: any later connection sees it.
    with sqlite3.connect(path) as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_every_pooled_connection_enforces_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'site.db'}")
    try:
        connections = [engine.raw_connection() for _ in range(3)]
        try:
            for conn in connections:
                assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
                assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            for conn in connections:
                conn.close()
    finally:
        engine.dispose()


def test_a_populated_site_upgrades_from_the_previous_release(engine: Engine) -> None:
    """A site row that distribution points refer to survives every later migration."""
    command.upgrade(alembic_config(engine), "0009")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO sites (code, name, created_at) VALUES ('PS1', 'x', :t)"),
            {"t": datetime.now(UTC)},
        )
        conn.execute(
            text(
                "INSERT INTO distribution_points (name, kind, site_code, bits_enabled,"
                " ip_addresses, created_at) VALUES ('dp1', 'standard', 'PS1', true, '[]', :t)"
            ),
            {"t": datetime.now(UTC)},
        )
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT code, policy_polling FROM sites")).one()
    assert tuple(row) == ("PS1", "long_poll")
