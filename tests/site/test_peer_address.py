"""The address a client's requests come from, kept next to the addresses it reports and
shown by `explain` and the client list (the reported ones are taken on trust)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from peerdp.cli.explain_cmd import _addresses_line
from peerdp.site.status_batch import Sightings
from peerdp.store.db import Database, upgrade
from peerdp.store.models import Client
from tests.helpers.api import ok, unique
from tests.helpers.processes import SiteProcess
from tests.site.mp_world import build


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    upgrade(database.engine)
    yield database
    database.dispose()


def test_sightings_keep_the_peer_address_and_write_when_it_alone_changes(db: Database) -> None:
    with db.transaction() as s:
        s.add(Client(name="PC-NAT", ip_addresses=["10.1.1.20"], ad_site=None))
    sightings = Sightings(db, interval_s=60)
    sightings.seen("PC-NAT", ("10.1.1.20",), None, "203.0.113.7")
    sightings.flush()
    sightings.seen("PC-NAT", ("10.1.1.20",), None, "203.0.113.8")  # same report, new peer
    assert sightings.flush() == 1
    with db.reading() as s:
        row = s.scalar(select(Client).where(Client.name == "PC-NAT"))
        assert row is not None
        assert (row.ip_addresses, row.peer_address) == (["10.1.1.20"], "203.0.113.8")
    sightings.close()


def test_the_explain_line_says_when_the_peer_is_not_a_reported_address() -> None:
    answer: dict[str, Any] = {
        "ip_addresses": ["10.1.1.20"],
        "reported_ip_addresses": ["10.1.1.20"],
        "peer_address": "203.0.113.7",
    }
    line = _addresses_line(answer)
    assert "10.1.1.20" in line and "came from 203.0.113.7" in line
    assert "not a reported address" in line
    assert "not a reported" not in _addresses_line({**answer, "peer_address": "10.1.1.20"})
    assert "no request" in _addresses_line({**answer, "peer_address": None})


@pytest.mark.slow
def test_the_peer_address_is_recorded_and_explained(site_server: SiteProcess) -> None:
    world = build(site_server)
    name = unique("PC-PEER")
    client = world.client(name, host=21)  # reports a branch address; connects from loopback
    reported = [f"{world.branch_net}.21"]

    listed = ok(world.admin.get("/clients"))
    row = next(c for c in listed if c["name"] == name)
    assert (row["ip_addresses"], row["peer_address"]) == (reported, "127.0.0.1")

    world.locate(client, host=21)
    params = {"client": name, "advertisement_id": world.advertisement["id"]}
    deadline = time.monotonic() + 10
    while (answer := ok(world.admin.get("/explain", params=params)))["peer_address"] is None:
        assert time.monotonic() < deadline, answer
        time.sleep(0.1)
    assert answer["reported_ip_addresses"] == reported
    assert answer["ip_addresses"] == reported
    assert answer["peer_address"] == "127.0.0.1"
