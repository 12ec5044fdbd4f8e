"""Engines and sessions for the site database: SQLite (embedded default) or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).parent / "migrations"


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'site.db'}"


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use psycopg 3 for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_sqlite(url: str) -> bool:
    return make_url(normalise_url(url)).get_backend_name() == "sqlite"


def make_engine(url: str, *, pool: bool = True) -> Engine:
    url = normalise_url(url)
    if is_sqlite(url):
        return _sqlite_engine(url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if pool:
        kwargs.update(pool_size=10, max_overflow=20)
    else:
        kwargs["poolclass"] = NullPool
    return create_engine(url, **kwargs)


# As many pooled connections as the site server has threads for blocking work (anyio's
# default limit is 40): a smaller pool makes a busy MP open and close a connection per
# request (with its PRAGMAs), which cost more than the queries themselves.
POOL_SIZE = 40


def _sqlite_engine(url: str, *, immediate: bool = True) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=POOL_SIZE,
        max_overflow=10,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so two writers wait for each other
        # (busy_timeout) instead of one failing when it upgrades a read lock. Readers
        # use a plain BEGIN: WAL lets them run beside the writer.
        # Straight to the driver: through SQLAlchemy's execution path this BEGIN cost as
        # much as the MP's one-row reads that follow it.
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to the newest migration."""
    command.upgrade(alembic_config(engine), "head")


class Database:
    """The engine and session factory of one site database."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # On SQLite reads get their own engine that does not take the write lock.
        self.read_engine = (
            _sqlite_engine(self.url, immediate=False) if is_sqlite(self.url) else self.engine
        )
        self.read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only transaction (never takes SQLite's write lock)."""
        with self.read_sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()


def dialect_insert(session: Session, model: type[Any]) -> Any:
    """An INSERT of `model` in the session's dialect, so it can say ON CONFLICT."""
    return insert_for(session.get_bind().dialect.name, model)


def insert_for(dialect: str, model: type[Any]) -> Any:
    """An INSERT of `model` in `dialect` ("postgresql" or "sqlite"), for ON CONFLICT."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)
