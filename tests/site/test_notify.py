"""The change bus: a change is announced when its transaction commits, and only then."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from peerdp.site.notify import ChangeBus
from peerdp.store.db import is_sqlite, make_engine


def local_bus(db_url: str) -> ChangeBus:
    # Not started: on PostgreSQL only the NOTIFY is sent, the local bump still counts.
    return ChangeBus(db_url, shared=not is_sqlite(db_url))


def test_a_failed_transaction_shows_only_its_own_error(db_url: str) -> None:
    engine = make_engine(db_url, pool=False)
    bus = local_bus(db_url)
    try:
        with Session(engine) as session:
            with pytest.raises(DBAPIError) as failure, session.begin():
                bus.publish(session, topology=True)
                session.execute(text("SELECT * FROM no_such_table"))
            assert not isinstance(failure.value.__context__, TypeError)
            assert bus.generation == 0  # the change never happened

            # The session goes on: its next change is announced once, as it commits.
            with session.begin():
                bus.publish(session, members=True)
            assert bus.generation == 1
            assert bus.generation_of("members") == 1
            assert bus.topology_generation == 0
    finally:
        engine.dispose()


def test_an_error_raised_by_the_code_is_the_one_seen(db_url: str) -> None:
    engine = make_engine(db_url, pool=False)
    bus = local_bus(db_url)
    try:
        session = Session(engine)
        with pytest.raises(LookupError, match="the real error"), session.begin():
            bus.publish(session)
            raise LookupError("the real error")
        session.close()
        assert bus.generation == 0
    finally:
        engine.dispose()


def test_a_savepoint_rolled_back_keeps_the_outer_change(db_url: str) -> None:
    engine = make_engine(db_url, pool=False)
    bus = local_bus(db_url)
    try:
        with Session(engine) as session:
            with session.begin():
                bus.publish(session, policy=True)
                with pytest.raises(LookupError), session.begin_nested():
                    raise LookupError("inner")
            assert bus.generation == 1
    finally:
        engine.dispose()
