"""The change bus: a change is announced when its transaction commits, and only then."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from peerdp.site.notify import ChangeBus
from peerdp.store.db import is_sqlite, make_engine
from tests.helpers.postgres import pg_schema


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


def test_a_change_is_counted_once_by_the_bus_that_made_it_and_once_by_others() -> None:
    """On PostgreSQL the NOTIFY comes back to its sender too: heard again, it would count
    as a second change and wake (and recompute) the machines it concerns a second time."""
    with pg_schema("t") as url:
        engine = make_engine(url, pool=False)
        maker, other = ChangeBus(url, shared=True), ChangeBus(url, shared=True)
        heard: dict[str, list[frozenset[str]]] = {"maker": [], "other": []}
        maker.listeners.append(heard["maker"].append)
        other.listeners.append(heard["other"].append)

        async def run() -> None:
            loop = asyncio.get_running_loop()
            for bus in (maker, other):
                await asyncio.to_thread(bus.start, loop)
            while not (maker.generation and other.generation):  # each counts its connect
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.1)  # and tells its listeners on this loop
            start = (maker.generation, other.generation)
            heard["maker"].clear()
            heard["other"].clear()
            with Session(engine) as session, session.begin():
                maker.publish(session, concerns=["collection:7"])
            for _ in range(100):  # the other hears it through LISTEN
                if other.generation > start[1]:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.2)  # longer than the listener's poll: an echo would be in
            assert (maker.generation, other.generation) == (start[0] + 1, start[1] + 1)
            assert heard == {"maker": [{"collection:7"}], "other": [{"collection:7"}]}
            assert other.changed_since(start[1], ["collection:7"])
            assert not other.changed_since(start[1], ["collection:8"])

        try:
            asyncio.run(run())
        finally:
            maker.stop()
            other.stop()
            engine.dispose()


def test_a_deployment_change_wakes_only_who_follows_deployments() -> None:
    """Clients' deployment states move with every status batch: the console's live pages
    hear of it (`seen`, in every process), but the overall generation (the distribution
    manager's wake-up) and the policy listeners (held long-polls) do not move."""
    with pg_schema("t") as url:
        engine = make_engine(url, pool=False)
        maker, other = ChangeBus(url, shared=True), ChangeBus(url, shared=True)
        heard: list[frozenset[str]] = []
        other.listeners.append(heard.append)

        async def run() -> None:
            loop = asyncio.get_running_loop()
            for bus in (maker, other):
                await asyncio.to_thread(bus.start, loop)
            while not (maker.generation and other.generation):
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.1)
            heard.clear()
            generations = (maker.generation, other.generation)
            seen = other.seen
            waiting = asyncio.ensure_future(other.wait(seen, 10, deployments=True))
            with Session(engine) as session, session.begin():
                maker.publish(session, deployments=True, concerns=())
            assert await asyncio.wait_for(waiting, 10) == seen + 1
            assert (maker.generation, other.generation) == generations
            assert heard == []
            assert await other.wait(other.generation, 0.2) == generations[1], "no wake-up"

        try:
            asyncio.run(run())
        finally:
            maker.stop()
            other.stop()
            engine.dispose()
