"""The MP answers from caches; a change that concerns a cache drops it at once.

Callers, collection membership and the location view are kept in memory, so a deleted
machine's credential, a membership change or a new DP must be seen by the very next
request, in this process and, on PostgreSQL, in every other site-server process.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.helpers.api import ok
from tests.helpers.processes import SiteProcess
from tests.site.mp_world import World, build, two_site_processes

pytestmark = pytest.mark.slow  # real site-server processes


def _forget_member(world: World, name: str) -> None:
    ok(world.admin.delete(f"/collections/{world.collection['id']}/members/{name}"))


def _add_member(world: World, name: str) -> None:
    body = {"member_names": [name]}
    ok(world.admin.post(f"/collections/{world.collection['id']}/members", json=body))


def _client_id(world: World, name: str) -> int:
    clients = ok(world.admin.get("/clients"))
    return next(int(c["id"]) for c in clients if c["name"] == name)


def _targeted(world: World, client: httpx.Client) -> bool:
    answer = world.locate(client)
    return answer.get("reason") != "not_targeted"


def _soon(check: Callable[[], bool]) -> bool:
    """True once `check` holds; another process hears of a change by a NOTIFY, which
    arrives moments after the commit that the admin's answer waited for."""
    deadline = time.monotonic() + 5
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_deleted_client_is_refused_at_once(site_server: SiteProcess) -> None:
    world = build(site_server)
    client = world.client("PC-GONE")
    ok(client.get("/ping"))  # known: answered from the caller cache
    ok(world.admin.delete(f"/clients/{_client_id(world, 'PC-GONE')}"), 204)
    refused = client.get("/ping")
    assert refused.status_code == 401, refused.text
    assert "revoked" in refused.json()["detail"]
    other = world.client("PC-STAYS")  # registered after the cache was dropped
    assert ok(other.get("/ping"))["name"] == "PC-STAYS"


def test_membership_changes_are_seen_by_the_next_request(site_server: SiteProcess) -> None:
    world = build(site_server)
    client = world.client("PC-MEMBER")
    assert _targeted(world, client)
    _forget_member(world, "PC-MEMBER")
    assert world.locate(client)["reason"] == "not_targeted"
    _add_member(world, "PC-MEMBER")
    assert _targeted(world, client)


def test_a_deleted_collection_takes_its_advertisements_out_of_the_answers(
    site_server: SiteProcess,
) -> None:
    world = build(site_server)
    client = world.client("PC-ORPHAN")
    assert _targeted(world, client)  # its advertisement's facts are cached now
    ok(world.admin.delete(f"/collections/{world.collection['id']}"), 204)
    body = {
        "advertisement_id": world.advertisement["id"],
        "package_id": world.package["id"],
        "source_version": world.package["source_version"],
        "ip_addresses": [f"{world.branch_net}.20"],
    }
    gone = client.post("/content-location", json=body)
    assert gone.status_code == 404, gone.text
    assert "does not exist" in gone.json()["detail"]


def test_changes_reach_the_other_site_process(tmp_path: Path) -> None:
    with two_site_processes(tmp_path) as (first, second):
        world = build(first)
        client = world.client("PC-ELSEWHERE")
        client.base_url = httpx.URL(second.url + "/mp/v1")  # it talks to the other process
        assert _targeted(world, client)
        _forget_member(world, "PC-ELSEWHERE")  # changed through the first process
        assert _soon(lambda: not _targeted(world, client))
        ok(world.admin.delete(f"/clients/{_client_id(world, 'PC-ELSEWHERE')}"), 204)
        assert _soon(lambda: client.get("/ping").status_code == 401)


def _cache_reads(site: SiteProcess) -> dict[str, float]:
    text = httpx.get(site.url + "/metrics", timeout=30).text
    found = re.findall(r'^peerdp_mp_cache_reads_total\{cache="(\w+)"\} (\S+)$', text, re.M)
    return {cache: float(value) for cache, value in found}


def test_repeated_answers_come_from_memory_until_something_changes(
    site_server: SiteProcess,
) -> None:
    world = build(site_server)
    client = world.client("PC-MEMORY")
    assert _targeted(world, client)
    before = _cache_reads(site_server)
    for _ in range(5):
        assert _targeted(world, client)
    repeated = _cache_reads(site_server)
    for cache in ("view", "callers", "members"):  # answered from memory: not one read
        assert repeated.get(cache) == before.get(cache), (cache, before, repeated)
    # Package facts are also dropped by DP state changes, which the distribution manager
    # makes in the background (this site's DPs do not answer); without the cache each
    # answer would read its advertisement and DP list: 10 reads.
    assert repeated["facts"] - before["facts"] < 10, (before, repeated)

    # A membership change drops the members only, read once again by the next answer.
    other = world.register("client", "PC-OTHER", ip_addresses=[f"{world.branch_net}.21"])
    _add_member(world, "PC-OTHER")
    assert _targeted(world, other)
    after = _cache_reads(site_server)
    assert after["members"] == before["members"] + 1, (before, after)
    assert after["caller"] == before.get("caller", 0) + 1  # a machine new since the load
    for cache in ("view", "callers"):
        assert after[cache] == before[cache], (cache, before, after)
