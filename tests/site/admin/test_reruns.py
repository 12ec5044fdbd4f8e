"""Reruns reach clients through their policy; programs' success codes; attempts in status.

On SQLite and PostgreSQL (the `site_server` fixture runs each module on both).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.helpers.api import ok, unique
from tests.helpers.processes import SiteProcess
from tests.site.mp_world import World, build

pytestmark = pytest.mark.slow  # a real site-server process


def _entry(policy: dict[str, Any], world: World) -> dict[str, Any]:
    [entry] = [a for a in policy["advertisements"] if a["id"] == world.advertisement["id"]]
    return entry


def _rerun(world: World, **body: Any) -> Any:
    return world.admin.post(f"/advertisements/{world.advertisement['id']}/rerun", json=body)


def test_a_rerun_reaches_the_client_it_names_through_its_policy(site_server: SiteProcess) -> None:
    world = build(site_server)
    first, second = unique("PC-RERUN"), unique("PC-OTHER")
    one, other = world.client(first), world.client(second, host=21)
    before = ok(one.get("/policy"))
    assert _entry(before, world)["rerun"] == 0
    assert _entry(ok(other.get("/policy")), world)["rerun"] == 0

    woken: dict[str, Any] = {}
    waiter = threading.Thread(
        target=lambda: woken.update(
            ok(one.get("/policy", params={"since": before["version"], "wait": 120}))
        )
    )
    waiter.start()
    rerun = ok(_rerun(world, client_name=first), 201)
    waiter.join()
    assert woken["version"] > before["version"], "the rerun must wake the client's long-poll"
    assert _entry(woken, world)["rerun"] == rerun["id"]
    assert rerun["client_name"] == first
    assert _entry(ok(other.get("/policy")), world)["rerun"] == 0, "only the client named"

    everyone = ok(world.admin.post(f"/advertisements/{world.advertisement['id']}/rerun"), 201)
    assert everyone["client_name"] is None
    for client in (one, other):
        assert _entry(ok(client.get("/policy")), world)["rerun"] == everyone["id"]

    [recorded, *_] = ok(
        world.admin.get(
            "/status-messages",
            params={"advertisement_id": world.advertisement["id"], "type": "advertisement_rerun"},
        )
    )
    assert recorded["client_name"] == first and first in recorded["detail"]


def test_a_rerun_names_a_member_of_the_collection(site_server: SiteProcess) -> None:
    world = build(site_server)
    refused = _rerun(world, client_name="NOT-A-MEMBER")
    assert refused.status_code == 422
    assert "NOT-A-MEMBER is not a member of collection" in refused.json()["detail"]
    missing = world.admin.post("/advertisements/999999/rerun", json={})
    assert missing.status_code == 404
    messages = ok(
        world.admin.get(
            "/status-messages",
            params={"advertisement_id": world.advertisement["id"], "type": "advertisement_rerun"},
        )
    )
    assert messages == [], "a refused rerun records nothing"


def test_a_programs_own_success_codes_reach_the_policy(site_server: SiteProcess) -> None:
    world = build(site_server)
    client = world.client(unique("PC-CODES"))
    path = f"/packages/{world.package['id']}/programs/install"
    assert ok(world.admin.get(path))["success_exit_codes"] == []
    assert _entry(ok(client.get("/policy")), world)["program"]["success_exit_codes"] == []
    changed = ok(world.admin.patch(path, json={"success_exit_codes": [17, 1618]}))
    assert changed["success_exit_codes"] == [17, 1618]
    assert _entry(ok(client.get("/policy")), world)["program"]["success_exit_codes"] == [17, 1618]
    refused = world.admin.patch(path, json={"success_exit_codes": ["x"]})
    assert refused.status_code == 422 and "success_exit_codes" in refused.text


def test_a_clients_attempts_are_kept_in_its_status_messages(site_server: SiteProcess) -> None:
    world = build(site_server)
    name = unique("PC-ATTEMPT")
    client = world.client(name)
    ids = {
        "advertisement_id": world.advertisement["id"],
        "package_id": world.package["id"],
        "source_version": world.package["source_version"],
    }
    messages = [
        {"type": "program_failed", "state": "retrying", "exit_code": 1, "attempt": 1,
         "next_attempt_at": "2026-12-04T12:01:00Z", **ids},
        {"type": "program_succeeded", "state": "restart_required", "exit_code": 3010,
         "attempt": 2, **ids},
    ]  # fmt: skip
    assert ok(client.post("/status", json={"messages": messages}))["accepted"] == 2
    rows = ok(world.admin.get("/status-messages", params={"client_name": name}))
    failed, succeeded = [r for r in rows if r["type"].startswith("program_")]
    assert (failed["attempt"], failed["severity"]) == (1, "error")
    assert failed["next_attempt_at"].startswith("2026-12-04T12:01:00")
    assert (succeeded["exit_code"], succeeded["state"]) == (3010, "restart_required")
    assert succeeded["severity"] == "info", "3010 is a success"
    naive = {**messages[0], "next_attempt_at": "2026-12-04T12:01:00"}
    answer = ok(client.post("/status", json={"messages": [naive]}))
    assert answer["accepted"] == 0 and "next_attempt_at" in answer["rejected"][0]["detail"]
