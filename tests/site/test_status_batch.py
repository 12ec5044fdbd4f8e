"""Batched writes of the MP: answer messages, machines' last contact, where clients were seen."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from peerdp.site.status_batch import Batcher, Sightings, StatusBatcher, client, dp
from peerdp.store.db import Database, upgrade
from peerdp.store.models import Client, DistributionPoint, Site, StatusMessage
from tests.helpers.api import ok
from tests.helpers.processes import SiteProcess
from tests.site.mp_world import build


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    upgrade(database.engine)
    yield database
    database.dispose()


def _client(db: Database, name: str) -> Client:
    with db.transaction() as s:
        client = s.scalar(select(Client).where(Client.name == name))
        assert client is not None
        return client


def test_messages_are_written_in_one_batch_and_close_flushes(db: Database) -> None:
    batcher = StatusBatcher(db, interval_s=60)  # only close() writes
    for n in range(3):
        batcher.message(component="mp", source="PS1", type="content_location", detail=f"#{n}")
    with db.reading() as s:
        assert s.scalars(select(StatusMessage)).all() == []
    batcher.close()
    with db.reading() as s:
        written = s.scalars(select(StatusMessage).order_by(StatusMessage.id)).all()
    assert [m.detail for m in written] == ["#0", "#1", "#2"]
    assert all(m.at.tzinfo is not None and m.severity == "info" for m in written)


def test_a_failed_batch_is_kept_and_written_by_the_next_flush(db: Database) -> None:
    failures = [RuntimeError("database went away")]
    written: list[int] = []

    def write(_s: Session, batch: list[int]) -> None:
        if failures:
            raise failures.pop()
        written.extend(batch)

    batcher: Batcher[int] = Batcher(db, write, name="test-batch", interval_s=60)
    batcher.add(1)
    batcher.add(2)
    with pytest.raises(RuntimeError):
        batcher.flush()
    batcher.add(3)
    assert batcher.flush() == 3
    batcher.close()
    assert written == [1, 2, 3]  # nothing lost, order kept


def test_sightings_update_the_client_row_only_when_something_changed(db: Database) -> None:
    with db.transaction() as s:
        s.add(Client(name="PC-MOVES", ip_addresses=["10.1.1.20"], ad_site="Branch1"))
    sightings = Sightings(db, interval_s=60)
    sightings.seen("PC-MOVES", ("10.2.2.30",), "Branch2")
    sightings.seen("PC-MOVES", ("10.3.3.40",), "Branch3")  # the latest one wins
    sightings.flush()
    moved = _client(db, "PC-MOVES")
    assert (moved.ip_addresses, moved.ad_site) == (["10.3.3.40"], "Branch3")
    assert moved.last_seen is not None

    with db.transaction() as s:  # mark the row, to see whether it is written again
        s.execute(Client.__table__.update().values(ad_site="marked"))
    sightings.seen("PC-MOVES", ("10.3.3.40",), "Branch3")  # nothing new: no write
    assert sightings.flush() == 0
    assert _client(db, "PC-MOVES").ad_site == "marked"
    sightings.seen("PC-UNKNOWN", ("10.9.9.9",), None)  # no row: nothing happens, no error
    sightings.close()


def _machines(db: Database) -> int:
    """A client PC-1 (addresses reported at registration) and a branch DP; the DP's id."""
    with db.transaction() as s:
        s.add(Site(code="PS1", name="test"))
        s.flush()
        s.add(Client(name="PC-1", ip_addresses=["10.1.1.20"], ad_site="Branch1"))
        row = DistributionPoint(name="BR01-DP", kind="branch", site_code="PS1")
        s.add(row)
        s.flush()
        return row.id


def _last_contacts(db: Database, dp_id: int) -> tuple[datetime | None, datetime | None]:
    with db.reading() as s:
        pc = s.scalar(select(Client).where(Client.name == "PC-1"))
        branch = s.get(DistributionPoint, dp_id)
        assert pc is not None and branch is not None
        return pc.last_seen, branch.last_seen


def test_contact_moves_the_last_contact_of_clients_and_dps_at_most_once_per_refresh(
    db: Database,
) -> None:
    dp_id = _machines(db)
    assert _last_contacts(db, dp_id) == (None, None)
    sightings = Sightings(db, interval_s=60, refresh_s=3600)
    sightings.contact(client("PC-1"))
    sightings.contact(dp(dp_id))
    assert sightings.flush() == 2
    first_pc, first_dp = _last_contacts(db, dp_id)
    assert first_pc is not None and first_dp is not None
    pc = _client(db, "PC-1")  # contact alone leaves what the client reported alone
    assert (pc.ip_addresses, pc.ad_site) == (["10.1.1.20"], "Branch1")

    sightings.contact(client("PC-1"))  # again within refresh_s: nothing to write
    sightings.contact(dp(dp_id))
    assert sightings.flush() == 0

    sightings.refresh_s = 0  # the refresh is due: written again, later
    sightings.contact(client("PC-1"))
    sightings.contact(dp(dp_id))
    sightings.close()
    later_pc, later_dp = _last_contacts(db, dp_id)
    assert later_pc is not None and later_pc > first_pc
    assert later_dp is not None and later_dp > first_dp


def test_a_place_reported_after_a_contact_is_written_and_kept(db: Database) -> None:
    dp_id = _machines(db)
    sightings = Sightings(db, interval_s=60, refresh_s=3600)
    sightings.contact(client("PC-1"))  # the request's contact, then its content location
    sightings.seen("PC-1", ("10.2.2.30",), "Branch2", "10.2.2.30")
    sightings.contact(client("PC-1"))
    sightings.flush()
    pc = _client(db, "PC-1")
    assert (pc.ip_addresses, pc.ad_site, pc.peer_address) == (["10.2.2.30"], "Branch2", "10.2.2.30")
    sightings.seen("PC-1", ("10.2.2.30",), "Branch2", "10.2.2.30")  # nothing new
    assert sightings.flush() == 0
    sightings.close()
    assert _last_contacts(db, dp_id)[1] is None  # the DP made no contact


def test_a_machine_holding_a_long_poll_stays_in_contact_until_it_is_answered(
    db: Database,
) -> None:
    dp_id = _machines(db)
    sightings = Sightings(db, interval_s=60, refresh_s=0)  # every sweep is due
    with sightings.holding(dp(dp_id)):
        assert sightings.flush() >= 1  # its arrival (and the sweep)
        arrived = _last_contacts(db, dp_id)[1]
        assert sightings.flush() == 1  # still waiting: in contact
        waiting = _last_contacts(db, dp_id)[1]
        assert arrived is not None and waiting is not None and waiting > arrived
    assert sightings.flush() == 1  # its answer
    assert sightings.flush() == 0  # gone: no more contact
    sightings.close()


def test_a_client_asking_from_another_branch_is_explained_from_there(
    site_server: SiteProcess,
) -> None:
    world = build(site_server)
    client = world.client("PC-LAPTOP", host=20)  # registered in the branch's subnet
    elsewhere = "192.0.2.44"  # then it asks from an address in no boundary
    body = {
        "advertisement_id": world.advertisement["id"],
        "package_id": world.package["id"],
        "source_version": world.package["source_version"],
        "ip_addresses": [elsewhere],
    }
    ok(client.post("/content-location", json=body))

    def explained() -> dict[str, Any]:
        params = {"client": "PC-LAPTOP", "advertisement_id": world.advertisement["id"]}
        return ok(world.admin.get("/explain", params=params))  # type: ignore[no-any-return]

    deadline = time.monotonic() + 10  # sightings are written in batches
    while explained()["ip_addresses"] != [elsewhere]:
        assert time.monotonic() < deadline, explained()
        time.sleep(0.1)
    listed = ok(world.admin.get("/clients"))
    row = next(c for c in listed if c["name"] == "PC-LAPTOP")
    assert row["ip_addresses"] == [elsewhere] and row["last_seen"]
