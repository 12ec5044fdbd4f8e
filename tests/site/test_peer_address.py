"""The address a client's requests come from, kept next to the addresses it reports and
shown by `explain` and the client list (the reported ones are taken on trust)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from peerdp.cli.explain_cmd import _addresses_line
from peerdp.site.status_batch import Sightings
from peerdp.store.db import Database, upgrade
from peerdp.store.models import Client
from tests.cli.support import Cli
from tests.helpers.api import ok, unique
from tests.helpers.processes import SiteProcess
from tests.site.mp_world import World, build


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


def _locate_reporting(world: World, client: httpx.Client, address: str) -> dict[str, Any]:
    body = {
        "advertisement_id": world.advertisement["id"],
        "package_id": world.package["id"],
        "source_version": world.package["source_version"],
        "ip_addresses": [address],
    }
    answer: dict[str, Any] = ok(client.post("/content-location", json=body))
    return answer


@pytest.mark.slow
def test_an_administrator_pins_a_client_to_the_address_the_mp_sees(
    site_server: SiteProcess,
) -> None:
    # The branch is where the client really is: its subnet holds the loopback address the
    # client's requests come from. The client claims an address in no boundary.
    world = build(site_server, branch_net="127.0.0")
    name = unique("PC-PIN")
    ok(
        world.admin.post(
            f"/collections/{world.collection['id']}/members", json={"member_names": [name]}
        )
    )
    client = world.register("client", name, ip_addresses=["10.250.250.21"])
    row = next(c for c in ok(world.admin.get("/clients", params={"name": name})))
    assert row["locate_by"] == "reported"

    # Placed by its claim: in no boundary, so no protected DP and no on-demand.
    answer = _locate_reporting(world, client, "10.250.250.21")
    assert (answer["distribution_points"], answer["reason"]) == ([], "no_content_accessible")
    assert world.dp_list().keys() == {world.standard_dp["id"]}

    pinned = ok(world.admin.patch(f"/clients/{row['id']}", json={"locate_by": "peer"}))
    assert pinned["locate_by"] == "peer"
    # The same claim now counts for nothing: the MP places it by 127.0.0.1, in the branch,
    # where on-demand provisioning fires for the branch's protected DP (delayed here: the
    # standard DP has not reported the content installed).
    answer = _locate_reporting(world, client, "10.250.250.21")
    assert answer["reason"] == "on_demand_delayed", answer
    assert answer["on_demand"] == [{"dp_id": world.branch_dp["id"], "action": "delayed"}]

    params = {"client": name, "advertisement_id": world.advertisement["id"]}
    explained = ok(world.admin.get("/explain", params=params))
    assert (explained["located_by"], explained["locate_by"]) == ("peer", "peer")
    assert explained["ip_addresses"] == ["127.0.0.1"]
    assert explained["reason"] == answer["reason"]
    assert explained["reported_ip_addresses"] == ["10.250.250.21"]
    assert "as an administrator pinned it" in explained["trace"][0]
    assert any(b["name"].endswith("-br") for b in explained["boundaries"])
    # Given addresses are a what-if: they place it even when it is pinned.
    what_if = ok(world.admin.get("/explain", params={**params, "ip_address": "10.250.250.21"}))
    assert (what_if["located_by"], what_if["boundaries"]) == ("given", [])

    changed = world.messages("client_placement_changed")  # the site's record of the change
    assert not changed  # filtered by package: a client's placement is not a package's
    events = ok(
        world.admin.get(
            "/status-messages", params={"client_name": name, "type": "client_placement_changed"}
        )
    )
    assert [e["detail"] for e in events] == [
        f"{name} is now placed in boundaries by the address its requests come from, "
        "as the management point sees it"
    ]

    unpinned = ok(world.admin.patch(f"/clients/{row['id']}", json={"locate_by": "reported"}))
    assert unpinned["locate_by"] == "reported"
    answer = _locate_reporting(world, client, "10.250.250.21")
    assert (answer["reason"], answer["on_demand"]) == ("no_content_accessible", []), answer


@pytest.mark.slow
def test_pinning_refuses_what_it_does_not_know(site_server: SiteProcess) -> None:
    admin = site_server.admin()
    missing = admin.patch("/clients/999999", json={"locate_by": "peer"})
    assert missing.status_code == 404 and "client 999999" in missing.json()["detail"]
    world = build(site_server)
    name = unique("PC-BAD")
    world.client(name)
    row = ok(admin.get("/clients", params={"name": name}))[0]
    for body in ({"locate_by": "gps"}, {}, {"locate_by": "peer", "ad_site": "X"}):
        refused = admin.patch(f"/clients/{row['id']}", json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert "locate_by" in refused.text or "ad_site" in refused.text
    assert ok(admin.get(f"/clients/{row['id']}"))["locate_by"] == "reported"


@pytest.mark.slow
def test_client_set_pins_by_name_from_the_cli(site_server: SiteProcess) -> None:
    world = build(site_server)
    name = unique("PC-CLI")
    world.client(name)
    cli = Cli.for_site(site_server)
    said = cli.ok("client", "set", name, "--locate-by", "peer")
    assert f"{name} is placed in boundaries by the address its requests come from" in said
    assert "peer" in cli.ok("client", "list")
    assert cli.json("client", "set", name, "--locate-by", "reported")["locate_by"] == "reported"
    assert "no client has the name or ID 'NOBODY-X'" in cli.fails(
        "client", "set", "NOBODY-X", "--locate-by", "peer"
    )
