"""Registration, authentication, policy (signed, own only, long-poll) and status rules."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from peerdp.security.signing import SignatureError, SiteKey, SitePublicKey
from tests.helpers.api import ok, unique
from tests.helpers.processes import SiteProcess, peerdp_cmd
from tests.site.mp_world import build

pytestmark = pytest.mark.slow  # real site-server processes


def _token(admin: httpx.Client, **body: Any) -> str:
    return str(ok(admin.post("/enrolment-tokens", json={"role": "client", **body}), 201)["token"])


def _register(site: SiteProcess, token: str, name: str) -> httpx.Response:
    return httpx.post(site.url + "/mp/v1/register", json={"token": token, "name": name})


def test_registration_refuses_wrong_expired_and_used_up_tokens(site_server: SiteProcess) -> None:
    admin = site_server.admin()
    wrong = _register(site_server, "pde_not-a-real-token", unique("pc"))
    assert wrong.status_code == 401 and "unknown enrolment token" in wrong.json()["detail"]

    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    expiring = _token(admin, expires_at=soon)
    time.sleep(2.5)
    expired = _register(site_server, expiring, unique("pc"))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]

    once = _token(admin, max_uses=1)
    assert _register(site_server, once, unique("pc")).status_code == 201
    used = _register(site_server, once, unique("pc"))
    assert used.status_code == 401 and "used up" in used.json()["detail"]


def test_answer_carries_credential_and_site_key(site_server: SiteProcess) -> None:
    answer = ok(_register(site_server, _token(site_server.admin()), unique("pc")), 201)
    assert answer["role"] == "client" and answer["credential"].startswith("pdm_")
    SitePublicKey.from_b64(answer["site_public_key"])  # a usable Ed25519 key


def test_calls_need_a_credential_of_the_right_role(site_server: SiteProcess) -> None:
    world = build(site_server)
    anonymous = httpx.get(site_server.url + "/mp/v1/policy")
    assert anonymous.status_code == 401
    forged = httpx.get(
        site_server.url + "/mp/v1/policy", headers={"Authorization": "Bearer pdm_forged"}
    )
    assert forged.status_code == 401
    dp = world.register("standard_dp", world.standard_dp["name"], world.standard_dp["id"])
    body = {
        "advertisement_id": world.advertisement["id"],
        "package_id": world.package["id"],
        "source_version": 1,
        "ip_addresses": [],
    }
    refused = dp.post("/content-location", json=body)
    assert refused.status_code == 403 and "standard_dp" in refused.json()["detail"]
    # The admin token is not a machine credential, and a machine credential is not admin.
    admin_as_machine = httpx.get(
        site_server.url + "/mp/v1/policy",
        headers={"Authorization": f"Bearer {site_server.admin_token}"},
    )
    assert admin_as_machine.status_code == 401
    machine_as_admin = httpx.get(site_server.url + "/api/v1/packages", headers=dp.headers)
    assert machine_as_admin.status_code == 401


def test_client_policy_lists_only_its_own_advertisements_and_is_signed(
    site_server: SiteProcess,
) -> None:
    world = build(site_server)
    member = world.client("PC-MEMBER")
    other = world.register("client", "PC-OTHER", ip_addresses=["10.250.0.1"])
    mine = ok(member.get("/policy"))
    theirs = ok(other.get("/policy"))
    assert [a["id"] for a in mine["advertisements"]] == [world.advertisement["id"]]
    assert theirs["advertisements"] == []
    assert mine["name"] == "PC-MEMBER" and theirs["name"] == "PC-OTHER"
    [adv] = mine["advertisements"]
    assert adv["flags"]["protected_only"] is True
    assert adv["program"]["command_line"] == "sh setup.sh"
    assert len(adv["manifest_digest"]) == 64

    key = SitePublicKey.from_b64(
        ok(_register(site_server, _token(site_server.admin()), unique("pc")), 201)[
            "site_public_key"
        ]
    )
    signed = {k: v for k, v in mine.items() if k != "signature"}
    key.verify_json(signed, mine["signature"])
    tampered = {**signed, "advertisements": []}
    with pytest.raises(SignatureError):
        key.verify_json(tampered, mine["signature"])
    with pytest.raises(SignatureError):
        SitePublicKey.from_b64(SiteKey.generate().public_key_b64).verify_json(
            signed, mine["signature"]
        )


def test_policy_version_moves_only_on_change_and_long_poll_wakes(
    site_server: SiteProcess,
) -> None:
    world = build(site_server)
    client = world.register("client", "PC-LONGPOLL", ip_addresses=["10.250.0.2"])
    first = ok(client.get("/policy"))
    assert ok(client.get("/policy"))["version"] == first["version"]  # nothing changed

    got: dict[str, Any] = {}

    def wait() -> None:
        started = time.monotonic()
        got["policy"] = ok(client.get("/policy", params={"since": first["version"], "wait": 30}))
        got["elapsed"] = time.monotonic() - started

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(1.0)
    assert "policy" not in got, "the long-poll answered before anything changed"
    ok(
        world.admin.post(
            f"/collections/{world.collection['id']}/members", json={"member_names": ["PC-LONGPOLL"]}
        )
    )
    waiter.join(40)
    assert got["policy"]["version"] == first["version"] + 1
    assert [a["id"] for a in got["policy"]["advertisements"]] == [world.advertisement["id"]]
    assert got["elapsed"] < 25, "woken by the change, not by the end of the wait"


def test_dp_states_move_only_along_sccm_transitions(site_server: SiteProcess) -> None:
    world = build(site_server)
    std = world.register("standard_dp", world.standard_dp["name"], world.standard_dp["id"])
    branch = world.register("branch_dp", world.branch_dp["name"], world.branch_dp["id"])
    not_listed = world.report(branch, "installed")
    assert not_listed["accepted"] == 0
    assert "not on this DP's list" in not_listed["rejected"][0]["detail"]
    stale = world.report(std, "installed", version=7)
    assert "stale report" in stale["rejected"][0]["detail"]
    bogus = ok(
        std.post(
            "/status",
            json={
                "messages": [
                    {
                        "type": "package_state",
                        "package_id": world.package["id"],
                        "source_version": 1,
                        "state": "exploded",
                    }
                ]
            },
        )
    )
    assert "not a state a DP reports" in bogus["rejected"][0]["detail"]
    assert world.report(std, "installed")["accepted"] == 1
    backwards = world.report(std, "removal_failed")
    assert "cannot move from installed to removal_failed" in backwards["rejected"][0]["detail"]
    assert world.dp_list()[world.standard_dp["id"]]["state"] == "installed"
    installed = ok(
        world.admin.get(
            "/status-messages",
            params={
                "package_id": world.package["id"],
                "type": "package_state",
                "state": "installed",
            },
        )
    )
    assert [m["dp_id"] for m in installed] == [world.standard_dp["id"]]
    # A batch: the good message is kept, the bad one is refused with its index.
    mixed = ok(
        std.post(
            "/status",
            json={
                "messages": [
                    {"type": "disk_space_low", "detail": "3 GB left"},
                    {
                        "type": "package_state",
                        "package_id": world.package["id"],
                        "source_version": 1,
                        "state": "removed",
                    },
                ]
            },
        )
    )
    assert mixed["accepted"] == 1 and mixed["rejected"][0]["index"] == 1


def test_a_damage_report_sends_an_installed_row_back_to_install_pending(
    site_server: SiteProcess,
) -> None:
    # A branch DP's row: the distribution manager leaves it alone (the DP pulls by itself).
    world = build(site_server)
    branch_id = world.branch_dp["id"]
    packages = f"/packages/{world.package['id']}/distribution-points"
    ok(world.admin.post(packages, json={"dp_id": branch_id}), 201)
    branch = world.register("branch_dp", world.branch_dp["name"], branch_id)
    assert world.report(branch, "installed")["accepted"] == 1
    client = world.client(unique("pc"))
    listed = [dp["dp_id"] for dp in world.locate(client)["distribution_points"]]
    assert listed == [branch_id]  # and the answer is now in the MP's cache
    damaged = {
        "type": "package_state",
        "package_id": world.package["id"],
        "source_version": world.package["source_version"],
        "state": "content_damaged",
        "detail": "content damaged: setup.exe (found on read)",
    }
    assert ok(branch.post("/status", json={"messages": [damaged]}))["accepted"] == 1
    row = world.dp_list()[branch_id]
    assert row["state"] == "install_pending"
    assert row["detail"] == "content damaged: setup.exe (found on read)"
    [logged] = ok(
        world.admin.get(
            "/status-messages",
            params={"package_id": world.package["id"], "state": "content_damaged"},
        )
    )
    assert logged["dp_id"] == branch_id and logged["severity"] == "warning"
    # The MP no longer sends clients there (its cached facts were dropped by the move) ...
    assert branch_id not in [dp["dp_id"] for dp in world.locate(client)["distribution_points"]]
    # ... and an administrator sees why.
    shown = subprocess.run(
        peerdp_cmd("package", "dp", "list", world.package["id"], "--json"),
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PEERDP_SITE_URL": site_server.url,
            "PEERDP_ADMIN_TOKEN": site_server.admin_token,
        },
        check=True,
    )
    [listed_row] = [r for r in json.loads(shown.stdout) if r["dp_id"] == branch_id]
    assert listed_row["state"] == "install_pending"
    assert listed_row["detail"] == "content damaged: setup.exe (found on read)"
    # Reported again while the content is on its way: logged, and the row stays.
    assert ok(branch.post("/status", json={"messages": [damaged]}))["accepted"] == 1
    assert world.dp_list()[branch_id]["state"] == "install_pending"


def world_branch_boundary(world: Any) -> str:
    [boundary] = [
        b["name"]
        for b in ok(world.admin.get("/boundaries"))
        if b["value"] == f"{world.branch_net}.0/24"
    ]
    return str(boundary)


def test_explain_reports_the_trace_and_changes_nothing(site_server: SiteProcess) -> None:
    world = build(site_server)
    world.client("PC-EXPLAIN")
    answer = ok(
        world.admin.get(
            "/explain",
            params={"client": "PC-EXPLAIN", "advertisement_id": world.advertisement["id"]},
        )
    )
    assert answer["reason"] == "on_demand_delayed"
    assert [b["name"] for b in answer["boundaries"]] == [world_branch_boundary(world)]
    assert any(world.branch_dp["name"] in line for line in answer["trace"])
    assert answer["on_demand"] == [{"dp_id": world.branch_dp["id"], "action": "delayed"}]
    requests = ok(
        world.admin.get("/on-demand-requests", params={"package_id": world.package["id"]})
    )
    assert requests == [], "explain must not carry out on-demand provisioning"
    unknown = world.admin.get(
        "/explain", params={"client": "NOBODY", "advertisement_id": world.advertisement["id"]}
    )
    assert unknown.status_code == 404 and "has not registered" in unknown.json()["detail"]


def test_sigterm_answers_open_long_polls_and_stops_promptly(tmp_path: Any) -> None:
    from tests.helpers.processes import start_site

    site = start_site(tmp_path / "site", f"sqlite:///{tmp_path / 'site.db'}")
    try:
        world = build(site)
        client = world.register("client", "PC-SHUTDOWN", ip_addresses=["10.250.0.3"])
        version = ok(client.get("/policy"))["version"]
        got: dict[str, Any] = {}

        def wait() -> None:
            got["answer"] = client.get("/policy", params={"since": version, "wait": 120})

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(1.0)
        started = time.monotonic()
        code = site.stop()
        stopped_in = time.monotonic() - started
        waiter.join(10)
    finally:
        site.stop()
    assert code == 0
    assert got["answer"].status_code == 200, "the open long-poll is answered, not cut"
    assert got["answer"].json()["version"] == version
    assert stopped_in < 4.5, f"shutdown waited {stopped_in:.1f}s for the long-poll"


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"{not json", ["not valid JSON"]),
        (b"", ["not valid JSON"]),
        (b'{"advertisement_id": 1}', ["package_id", "is required"]),
        (
            b'{"advertisement_id": "x", "package_id": "PS100001", "source_version": 1}',
            ["advertisement_id"],
        ),
        (b'{"advertisement_id": 1, "package_id": "../etc", "source_version": 1}', ["package_id"]),
        (
            b'{"advertisement_id": 1, "package_id": "PS100001", "source_version": 0}',
            ["source_version"],
        ),
        (b'{"advertisement_id": 1, "package_id": "PS100001", "source_version": 1, "x": 2}', ["x"]),
        (b"[1, 2]", ["object"]),
    ],
)
def test_bad_content_location_bodies_are_refused_with_the_reason(
    site_server: SiteProcess, raw: bytes, words: list[str]
) -> None:
    world = build(site_server)
    client = world.client(unique("pc"))
    answer = client.post(
        "/content-location", content=raw, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert all(word in detail for word in words), detail
    world.locate(client)  # then one good request: only it is answered and recorded
    assert len(world.messages("content_location", at_least=1)) == 1
