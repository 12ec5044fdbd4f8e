"""No impersonation through enrolment: a name with a live identity is not handed out again.

A client token registering a name that is already registered is refused (409, a
`conflicting_record` status message) until an administrator allows re-enrolment or deletes
the client; the registration then revokes the old credential. A DP row registered again
revokes the previous machine's credential. A token of another role is refused unspent.
"""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.support import Cli
from tests.dp.standard_support import start_dp
from tests.helpers.api import ok, unique
from tests.helpers.processes import SiteProcess, peerdp_cmd

pytestmark = pytest.mark.slow  # real site-server (and DP) processes


def _token(admin: httpx.Client, role: str = "client", **body: Any) -> dict[str, Any]:
    made: dict[str, Any] = ok(
        admin.post("/enrolment-tokens", json={"role": role, "max_uses": 10, **body}), 201
    )
    return made


def _register(site: SiteProcess, token: str, name: str, **body: Any) -> httpx.Response:
    return httpx.post(
        site.url + "/mp/v1/register", json={"token": token, "name": name, **body}, timeout=30
    )


def _ping(site: SiteProcess, credential: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {credential}"}
    return httpx.get(site.url + "/mp/v1/ping", headers=headers, timeout=30)


def _uses(admin: httpx.Client, token_id: int) -> int:
    return int(ok(admin.get(f"/enrolment-tokens/{token_id}"))["uses"])


def _messages(admin: httpx.Client, **filters: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = ok(admin.get("/status-messages", params=filters))
    return rows


def test_a_registered_name_is_refused_and_the_victim_keeps_its_identity(
    site_server: SiteProcess,
) -> None:
    admin = site_server.admin()
    token = _token(admin)
    name = unique("PC-VICTIM")
    victim = ok(_register(site_server, token["token"], name), 201)

    attempt = _register(site_server, token["token"], name, ip_addresses=["10.66.0.1"])
    assert attempt.status_code == 409
    assert f"a client named {name} is already registered" in attempt.json()["detail"]
    assert f"peerdp client reenrol {name}" in attempt.json()["detail"]
    assert _uses(admin, token["id"]) == 1  # the refused attempt spent nothing
    [conflict] = _messages(admin, client_name=name, type="conflicting_record")
    assert conflict["severity"] == "warning" and "refused" in conflict["detail"]

    assert ok(_ping(site_server, victim["credential"]))["name"] == name
    [client] = ok(admin.get("/clients", params={"name": name}))
    assert client["ip_addresses"] == [] and client["reenrol_allowed"] is False


def test_allowed_reenrolment_revokes_the_old_credential_once(site_server: SiteProcess) -> None:
    admin = site_server.admin()
    token = _token(admin)["token"]
    name = unique("PC-REBUILT")
    old = ok(_register(site_server, token, name), 201)

    allowed = ok(admin.post(f"/clients/{old['client_id']}/reenrol"))
    assert allowed["reenrol_allowed"] is True
    assert _ping(site_server, old["credential"]).status_code == 200  # until it registers

    new = ok(_register(site_server, token, name), 201)
    assert new["client_id"] == old["client_id"]  # the same client: collections, history kept
    revoked = _ping(site_server, old["credential"])
    assert revoked.status_code == 401
    assert ok(_ping(site_server, new["credential"]))["machine_id"] == new["machine_id"]
    assert ok(admin.get(f"/clients/{old['client_id']}"))["reenrol_allowed"] is False
    # The permission was for one registration: a third is a conflicting record again.
    assert _register(site_server, token, name).status_code == 409
    assert _ping(site_server, new["credential"]).status_code == 200
    registered = _messages(admin, client_name=name, type="machine_registered")
    assert ["credential is revoked" in m["detail"] for m in registered].count(True) == 1
    assert _messages(admin, client_name=name, type="reenrolment_allowed")


def test_deleting_the_client_lets_the_name_register_again(site_server: SiteProcess) -> None:
    admin = site_server.admin()
    token = _token(admin)["token"]
    name = unique("PC-DELETED")
    old = ok(_register(site_server, token, name), 201)
    assert admin.delete(f"/clients/{old['client_id']}").status_code == 204

    new = ok(_register(site_server, token, name), 201)
    assert _ping(site_server, old["credential"]).status_code == 401
    assert _ping(site_server, new["credential"]).status_code == 200


def test_a_dp_row_registered_again_revokes_the_previous_machine(site_server: SiteProcess) -> None:
    admin = site_server.admin()
    dp = ok(admin.post("/distribution-points", json={"name": unique("br"), "kind": "branch"}), 201)
    first = ok(
        _register(site_server, _token(admin, "branch_dp", dp_id=dp["id"])["token"], "br"), 201
    )
    second = ok(
        _register(site_server, _token(admin, "branch_dp", dp_id=dp["id"])["token"], "br-new"), 201
    )
    assert first["dp_id"] == second["dp_id"] == dp["id"]
    assert _ping(site_server, first["credential"]).status_code == 401
    assert ok(_ping(site_server, second["credential"]))["name"] == "br-new"
    registered = _messages(admin, dp_id=dp["id"], type="machine_registered")
    assert ["credential is revoked" in m["detail"] for m in registered] == [False, True]


def test_machines_registering_as_one_dp_row_at_once_leave_one_credential(
    site_server: SiteProcess,
) -> None:
    # Without a lock on the DP row, PostgreSQL let each racer revoke the others' (not yet
    # committed) identities and keep its own: several live credentials for one DP.
    admin = site_server.admin()
    dp = ok(admin.post("/distribution-points", json={"name": unique("br"), "kind": "branch"}), 201)
    token = _token(admin, "branch_dp", dp_id=dp["id"])["token"]
    racers = 8
    with ThreadPoolExecutor(racers) as pool:
        answers = list(pool.map(lambda n: _register(site_server, token, f"br-{n}"), range(racers)))
    credentials = [ok(answer, 201)["credential"] for answer in answers]
    live = [c for c in credentials if _ping(site_server, c).status_code == 200]
    assert len(live) == 1, f"{len(live)} live credentials for one DP row"


def test_a_token_of_another_role_is_refused_unspent(site_server: SiteProcess) -> None:
    admin = site_server.admin()
    token = _token(admin)
    refused = _register(site_server, token["token"], unique("dp"), role="standard_dp")
    assert refused.status_code == 403
    assert refused.json()["detail"] == ("this enrolment token is for a client, not a standard DP")
    assert _uses(admin, token["id"]) == 0


def test_cli_reenrol_names_the_client(site_server: SiteProcess) -> None:
    admin = site_server.admin()
    cli = Cli.for_site(site_server)
    token = _token(admin)["token"]
    name = unique("PC-CLI")
    old = ok(_register(site_server, token, name), 201)

    assert f"{name} may register again" in cli.ok("client", "reenrol", name)
    assert cli.json("client", "reenrol", name)["reenrol_allowed"] is True
    nobody = unique("NOBODY")
    assert f"no client has the name or ID '{nobody}'" in cli.fails("client", "reenrol", nobody)
    ok(_register(site_server, token, name), 201)
    assert _ping(site_server, old["credential"]).status_code == 401


# -- machines started with a token of another role ----------------------------------------


@pytest.mark.parametrize(
    ("command", "role", "wanted"),
    [("dp", "client", "a standard DP"), ("branch", "standard_dp", "a branch DP")],
)
def test_a_dp_started_with_a_token_of_another_role_is_refused_untouched(
    site_server: SiteProcess, tmp_path: Path, command: str, role: str, wanted: str
) -> None:
    admin = site_server.admin()
    kind = {"client": None, "standard_dp": "standard"}[role]
    dp_id = None
    if kind is not None:
        body = {"name": unique("dp"), "kind": kind}
        dp_id = ok(admin.post("/distribution-points", json=body), 201)["id"]
    token = _token(admin, role, dp_id=dp_id)
    data_dir = tmp_path / "data"
    args = ["serve", "--site", site_server.url, "--data-dir", str(data_dir), "--port", "0"]
    done = subprocess.run(
        peerdp_cmd(command, *args, "--token", token["token"]),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},  # the error's line unwrapped
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if "enrolment token" in line]
    assert f"not {wanted}" in line
    assert _uses(admin, token["id"]) == 0
    assert not data_dir.exists()


def test_a_dp_restarting_with_its_saved_identity_does_not_register_again(
    site_server: SiteProcess, tmp_path: Path
) -> None:
    admin = site_server.admin()
    dp = ok(
        admin.post("/distribution-points", json={"name": unique("hq"), "kind": "standard"}), 201
    )
    token = _token(admin, "standard_dp", dp_id=dp["id"], max_uses=1)
    first = start_dp(site_server, tmp_path, token["token"])
    identity = json.loads((tmp_path / "identity.json").read_text())
    first.stop()

    second = start_dp(site_server, tmp_path)  # no token: the kept identity
    try:
        assert json.loads((tmp_path / "identity.json").read_text()) == identity
        assert _ping(site_server, identity["credential"]).status_code == 200
        registered = _messages(admin, dp_id=dp["id"], type="machine_registered")
        assert len(registered) == 1
        assert _uses(admin, token["id"]) == 1
    finally:
        second.stop()
