"""Policy long-polls against a real site server, on SQLite and PostgreSQL: a change wakes
only the machines whose policy it concerns (counted through the site's own metric of
policy computations), the others stay held and get nothing, a quiet poll is answered
`304 Not Modified` without a computation, and a client that hangs up is let go at once."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.api import ok, unique, wait_for
from tests.helpers.processes import SiteProcess
from tests.site.mp_world import World, build

pytestmark = pytest.mark.slow  # a real site server


def metric(site: SiteProcess, name: str, **labels: str) -> float:
    text = httpx.get(site.url + "/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def computations(site: SiteProcess, what: str = "client") -> float:
    return metric(site, "peerdp_mp_policy_computations_total", what=what)


def waiting(site: SiteProcess) -> float:
    return metric(site, "peerdp_mp_policy_waiting")


@pytest.fixture
def world(site_server: SiteProcess) -> World:
    return build(site_server)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=16) as executor:
        yield executor


def second_collection(world: World) -> dict[str, Any]:
    """Another collection with its own advertisement of the world's package."""
    collection: dict[str, Any] = ok(
        world.admin.post("/collections", json={"name": unique("other")}), 201
    )
    advertise(world, collection["id"])
    return collection


def advertise(world: World, collection_id: int) -> dict[str, Any]:
    body = {
        "name": unique("adv"),
        "package_id": world.package["id"],
        "program_name": world.advertisement["program_name"],
        "collection_id": collection_id,
    }
    answer: dict[str, Any] = ok(world.admin.post("/advertisements", json=body), 201)
    return answer


def join(world: World, collection_id: int, name: str) -> httpx.Client:
    ok(world.admin.post(f"/collections/{collection_id}/members", json={"member_names": [name]}))
    return world.register("client", name, ip_addresses=[f"{world.branch_net}.30"])


def hold(pool: ThreadPoolExecutor, client: httpx.Client, wait: float = 120) -> Future[Any]:
    """A long-poll for a policy newer than the one the client has now."""
    version = ok(client.get("/policy"))["version"]
    return pool.submit(
        lambda: client.get("/policy", params={"since": version, "wait": wait}, timeout=wait + 30)
    )


def test_a_change_to_one_collection_wakes_only_its_members(
    world: World, site_server: SiteProcess, pool: ThreadPoolExecutor
) -> None:
    members = [world.client(unique("in")) for _ in range(3)]
    other = second_collection(world)
    others = [join(world, other["id"], unique("out")) for _ in range(3)]
    before = waiting(site_server)
    polls = [hold(pool, client) for client in members + others]
    wait_for("every long-poll held", lambda: waiting(site_server) == before + 6)
    computed = computations(site_server)

    added = advertise(world, world.collection["id"])

    for poll in polls[:3]:
        answer = poll.result(timeout=30)
        assert answer.status_code == 200
        assert added["id"] in [a["id"] for a in answer.json()["advertisements"]]
    # The members of the other collection stay held and were not even recomputed.
    assert computations(site_server) == computed + 3
    assert not any(poll.done() for poll in polls[3:])
    assert waiting(site_server) == before + 3

    advertise(world, other["id"])
    for poll in polls[3:]:
        assert len(poll.result(timeout=30).json()["advertisements"]) == 2


def test_a_change_no_policy_reads_wakes_nobody(
    world: World, site_server: SiteProcess, pool: ThreadPoolExecutor
) -> None:
    clients = [world.client(unique("pc")) for _ in range(2)]
    before = waiting(site_server)
    polls = [hold(pool, client) for client in clients]
    wait_for("both long-polls held", lambda: waiting(site_server) == before + 2)
    computed = computations(site_server) + computations(site_server, "shared")

    boundary = {"name": unique("b"), "type": "ad_site", "value": unique("Branch")}
    ok(world.admin.post("/boundaries", json=boundary), 201)
    ok(world.admin.patch(f"/collections/{world.collection['id']}", json={"name": unique("c")}))

    assert computations(site_server) + computations(site_server, "shared") == computed
    assert not any(poll.done() for poll in polls)
    assert waiting(site_server) == before + 2
    advertise(world, world.collection["id"])  # one that concerns them lets them go
    assert all(poll.result(timeout=30).status_code == 200 for poll in polls)


def test_a_client_that_hangs_up_is_let_go_at_once(world: World, site_server: SiteProcess) -> None:
    client = world.client(unique("pc"))
    version = ok(client.get("/policy"))["version"]
    credential = client.headers["authorization"]
    before = waiting(site_server)
    url = httpx.URL(site_server.url)
    with socket.create_connection((url.host, url.port)) as connection:
        connection.sendall(
            f"GET /mp/v1/policy?since={version}&wait=280 HTTP/1.1\r\n"
            f"Host: {url.host}\r\nAuthorization: {credential}\r\n\r\n".encode()
        )
        wait_for("the long-poll held", lambda: waiting(site_server) == before + 1)
    # Closed long before its 280 s: the site drops the waiter now, not at its timeout.
    wait_for("the hung-up poll dropped", lambda: waiting(site_server) == before, timeout=20)


def test_a_machine_joining_a_collection_is_woken_alone(
    world: World, site_server: SiteProcess, pool: ThreadPoolExecutor
) -> None:
    other = second_collection(world)
    joiner, bystander = (world.client(unique("pc")) for _ in range(2))
    before = waiting(site_server)
    polls = [hold(pool, joiner), hold(pool, bystander)]
    wait_for("both long-polls held", lambda: waiting(site_server) == before + 2)

    name = ok(joiner.get("/policy"))["name"]
    ok(world.admin.post(f"/collections/{other['id']}/members", json={"member_names": [name]}))

    assert len(polls[0].result(timeout=30).json()["advertisements"]) == 2
    assert not polls[1].done()
    advertise(world, world.collection["id"])
    assert polls[1].result(timeout=30).status_code == 200


def test_a_quiet_poll_is_answered_not_modified_without_a_computation(
    world: World, site_server: SiteProcess
) -> None:
    client = world.client(unique("pc"))
    first = client.get("/policy")
    version = ok(first)["version"]
    assert first.headers["etag"] == f'"{version}"'
    computed = computations(site_server)

    held = {"If-None-Match": f'"{version}"'}
    at_once = client.get("/policy", headers=held)
    assert (at_once.status_code, at_once.content) == (304, b"")
    assert at_once.headers["etag"] == f'"{version}"'
    timed_out = client.get("/policy", params={"since": version, "wait": 1}, headers=held)
    assert timed_out.status_code == 304
    assert computations(site_server) == computed  # answered from memory

    advertise(world, world.collection["id"])
    changed = client.get("/policy", headers=held)
    assert changed.status_code == 200
    assert changed.json()["version"] == version + 1
    assert changed.headers["etag"] == f'"{version + 1}"'
    # An older agent, without If-None-Match, still gets the whole policy.
    assert ok(client.get("/policy", params={"since": version + 1, "wait": 0}))["version"] == (
        version + 1
    )


def test_a_rerun_for_one_client_reaches_that_client_alone(
    world: World, site_server: SiteProcess, pool: ThreadPoolExecutor
) -> None:
    target, neighbour = (world.client(unique("pc")) for _ in range(2))
    name = ok(target.get("/policy"))["name"]
    before = waiting(site_server)
    polls = [hold(pool, target), hold(pool, neighbour)]
    wait_for("both long-polls held", lambda: waiting(site_server) == before + 2)

    advertisement = world.advertisement["id"]
    rerun = ok(
        world.admin.post(f"/advertisements/{advertisement}/rerun", json={"client_name": name}),
        201,
    )
    entry = polls[0].result(timeout=30).json()["advertisements"][0]
    assert entry["rerun"] == rerun["id"]
    assert not polls[1].done()
    ok(world.admin.post(f"/advertisements/{advertisement}/rerun"), 201)  # for all
    assert polls[1].result(timeout=30).json()["advertisements"][0]["rerun"] > rerun["id"]


def test_every_waiter_concerned_is_answered(
    world: World, site_server: SiteProcess, pool: ThreadPoolExecutor
) -> None:
    clients = [world.client(unique("pc")) for _ in range(12)]
    before = waiting(site_server)
    polls = [hold(pool, client) for client in clients]
    wait_for("every long-poll held", lambda: waiting(site_server) == before + 12)
    shared = computations(site_server, "shared")

    # A new program line for the package: every advertisement of it changes.
    program = world.advertisement["program_name"]
    ok(
        world.admin.patch(
            f"/packages/{world.package['id']}/programs/{program}", json={"timeout_s": 1234}
        )
    )
    for poll in polls:
        entry = poll.result(timeout=30).json()["advertisements"][0]
        assert entry["program"]["timeout_s"] == 1234
    # Clients in the same collection share one body: read once, not once per client.
    assert computations(site_server, "shared") == shared + 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=abc", "since: must be a whole number, 0 or more (got 'abc')"),
        ("since=-1", "since: must be a whole number, 0 or more (got '-1')"),
        ("wait=5000", "wait: must be a number of seconds, 0 to 3600 (got '5000')"),
        ("wait=nan", "wait: must be a number of seconds, 0 to 3600 (got 'nan')"),
        ("since=1&wait=x", "wait: must be a number of seconds, 0 to 3600 (got 'x')"),
    ],
)
def test_a_bad_query_is_refused_naming_the_field(world: World, query: str, field: str) -> None:
    client = world.client(unique("pc"))
    answer = client.get("/policy?" + query)
    assert answer.status_code == 422
    assert answer.json()["detail"] == field


def test_a_caller_without_a_machine_credential_is_refused(
    world: World, site_server: SiteProcess
) -> None:
    url = site_server.url + "/mp/v1/policy"
    assert "missing bearer token" in httpx.get(url).json()["detail"]
    unknown = httpx.get(url, headers={"Authorization": "Bearer pdm_nobody"})
    assert (unknown.status_code, unknown.json()["detail"]) == (
        401,
        "unknown or revoked machine credential",
    )
    admin = httpx.get(url, headers={"Authorization": f"Bearer {site_server.admin_token}"})
    assert admin.status_code == 401
    # Only GET is served there; the API's description still documents it.
    assert httpx.post(url).status_code in (404, 405)
    described = httpx.get(site_server.url + "/openapi.json").json()["paths"]["/mp/v1/policy"]
    assert [p["name"] for p in described["get"]["parameters"]] == [
        "since",
        "wait",
        "If-None-Match",
    ]
