"""Administrator accounts and their roles, enforced on every admin route; the audit log.

In process (the site's app without a server) on SQLite and PostgreSQL: each role against
configuration, action and read routes, the refusals' words, revocation and expiry taking
effect at once (also in a second app on the same database, as a second site process
would be: credentials are never cached), the audit entries, and bad input.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from peerdp.config import SiteSettings
from peerdp.site.admin.access import API, FULL_READS, OPERATOR_ACTIONS
from peerdp.site.app import create_app
from peerdp.store.db import Database
from peerdp.store.models import AdminAccount
from tests.helpers.api import ok, tar_of
from tests.helpers.asgi import asgi_request

SITE_TOKEN = "site-admin-secret"


class Site:
    """The site's admin API in this process, asked with one token or another."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def call(
        self,
        token: str | None,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> httpx.Response:
        if token is not None:
            headers = {**(headers or {}), "Authorization": f"Bearer {token}"}
        return asgi_request(self.app, method, API + path, headers, **options)

    def admin(self, method: str, path: str, **options: Any) -> httpx.Response:
        return self.call(SITE_TOKEN, method, path, **options)

    def account(self, name: str, role: str, **fields: Any) -> str:
        """A new account's secret."""
        body = {"name": name, "role": role, **fields}
        created = ok(self.admin("POST", "/admin-accounts", json=body), 201)
        token: str = created["token"]
        return token


def make_site(tmp_path: Path, db_url: str) -> Site:
    settings = {"data_dir": tmp_path / "site", "admin_token": SITE_TOKEN, "db": db_url}
    return Site(create_app(SiteSettings.model_validate(settings)))


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Site:
    return make_site(tmp_path, db_url)


@pytest.fixture
def world(site: Site) -> dict[str, Any]:
    """A standard DP, a package, an advertisement and a registered client."""
    dp = ok(
        site.admin(
            "POST",
            "/distribution-points",
            json={"name": "HQ-DP01", "kind": "standard", "url": "http://127.0.0.1:9"},
        ),
        201,
    )
    package = ok(site.admin("POST", "/packages", json={"name": "Acme"}), 201)
    ok(site.admin("POST", f"/packages/{package['id']}/versions", content=_tar(), headers=TAR), 201)
    body = {"name": "install", "command_line": "sh setup.sh"}
    ok(site.admin("POST", f"/packages/{package['id']}/programs", json=body), 201)
    collection = ok(site.admin("POST", "/collections", json={"name": "PCs"}), 201)
    advertisement = ok(
        site.admin(
            "POST",
            "/advertisements",
            json={
                "name": "Acme to PCs",
                "package_id": package["id"],
                "program_name": "install",
                "collection_id": collection["id"],
            },
        ),
        201,
    )
    return {"dp": dp, "package": package, "advertisement": advertisement}


TAR = {"Content-Type": "application/x-tar"}


def _tar() -> bytes:
    return tar_of({"setup.sh": b"echo hi\n"})


def _attempts(site: Site, token: str, world: dict[str, Any]) -> dict[str, int]:
    """What each kind of route answers `token`: configuration, action, read."""
    package, dp = world["package"]["id"], world["dp"]["id"]
    adv = world["advertisement"]["id"]
    answers = {
        "configure boundary": site.call(
            token,
            "POST",
            "/boundaries",
            json={"name": f"B-{token[-6:]}", "type": "ip_subnet", "value": "10.9.0.0/24"},
        ),
        "configure DP": site.call(
            token, "PATCH", f"/distribution-points/{dp}", json={"max_transfers": 5}
        ),
        "configure site": site.call(
            token, "PUT", "/site/policy-polling", json={"mode": "long_poll"}
        ),
        "add DP to package": site.call(
            token, "POST", f"/packages/{package}/distribution-points", json={"dp_id": dp}
        ),
        "rerun": site.call(token, "POST", f"/advertisements/{adv}/rerun"),
        "enrolment token": site.call(token, "POST", "/enrolment-tokens", json={"role": "client"}),
        "read packages": site.call(token, "GET", "/packages"),
        "read status": site.call(token, "GET", "/status-messages"),
        "read audit": site.call(token, "GET", "/audit"),
        "read accounts": site.call(token, "GET", "/admin-accounts"),
    }
    return {what: answer.status_code for what, answer in answers.items()}


READS_ALL = {"read packages": 200, "read status": 200, "read audit": 200}
EXPECTED = {
    "read_only": {
        "configure boundary": 403,
        "configure DP": 403,
        "configure site": 403,
        "add DP to package": 403,
        "rerun": 403,
        "enrolment token": 403,
        **READS_ALL,
        "read accounts": 403,
    },
    "operator": {
        "configure boundary": 403,
        "configure DP": 403,
        "configure site": 403,
        "add DP to package": 201,
        "rerun": 201,
        "enrolment token": 201,
        **READS_ALL,
        "read accounts": 403,
    },
    "full": {
        "configure boundary": 201,
        "configure DP": 200,
        "configure site": 200,
        "add DP to package": 201,
        "rerun": 201,
        "enrolment token": 201,
        **READS_ALL,
        "read accounts": 200,
    },
}


@pytest.mark.parametrize("role", ["read_only", "operator", "full"])
def test_each_role_against_configuration_action_and_read_routes(
    site: Site, world: dict[str, Any], role: str
) -> None:
    token = site.account(f"someone-{role}", role)
    assert _attempts(site, token, world) == EXPECTED[role]


def test_the_site_admin_token_stays_full(site: Site, world: dict[str, Any]) -> None:
    assert _attempts(site, SITE_TOKEN, world) == EXPECTED["full"]


def test_a_refusal_names_the_role_needed_and_the_role_held(site: Site) -> None:
    token = site.account("auditor", "read_only")
    refused = site.call(token, "POST", "/enrolment-tokens", json={"role": "client"})
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "POST /api/v1/enrolment-tokens needs the operator role; "
        "admin account 'auditor' holds the read_only role"
    )
    token = site.account("ops", "operator")
    refused = site.call(token, "DELETE", "/boundaries/1")
    assert refused.json()["detail"] == (
        "DELETE /api/v1/boundaries/{boundary_id} needs the full role; "
        "admin account 'ops' holds the operator role"
    )


def test_operators_act_on_clients_and_tokens(site: Site) -> None:
    token = site.account("ops", "operator")
    created = ok(site.call(token, "POST", "/enrolment-tokens", json={"role": "client"}), 201)
    registered = ok(register(site, created["token"], "PC-0001"), 201)
    [client] = ok(site.call(token, "GET", "/clients"))
    assert client["name"] == "PC-0001" and registered["client_id"] == client["id"]
    ok(site.call(token, "POST", f"/clients/{client['id']}/reenrol"))
    pin = site.call(token, "PATCH", f"/clients/{client['id']}", json={"locate_by": "reported"})
    assert pin.status_code == 403, "placing a client in boundaries is configuration"
    ok(site.call(token, "DELETE", f"/clients/{client['id']}"), 204)
    ok(site.call(token, "DELETE", f"/enrolment-tokens/{created['id']}"), 204)


def register(site: Site, enrolment_token: str, name: str) -> httpx.Response:
    body = {"token": enrolment_token, "name": name, "ip_addresses": ["10.0.0.7"]}
    return asgi_request(site.app, "POST", "/mp/v1/register", json=body)


def test_the_secret_is_kept_hashed_and_shown_once(site: Site, db_url: str) -> None:
    body = {"name": "ops", "role": "operator"}
    created = ok(site.admin("POST", "/admin-accounts", json=body), 201)
    assert created["token"].startswith("pda_") and len(created["token"]) > 40
    [listed] = ok(site.admin("GET", "/admin-accounts"))
    assert "token" not in listed and listed["last_used_at"] is None
    assert created["token"] not in site.admin("GET", f"/admin-accounts/{created['id']}").text
    db = Database(db_url)
    try:
        with db.transaction() as s:
            stored = s.scalar(select(AdminAccount.token_hash))
    finally:
        db.dispose()
    assert stored == hashlib.sha256(created["token"].encode()).hexdigest()
    ok(site.call(created["token"], "GET", "/packages"))
    [used] = ok(site.admin("GET", "/admin-accounts"))
    assert used["last_used_at"] is not None


def test_revocation_takes_effect_at_once_in_every_site_process(
    site: Site, tmp_path: Path, db_url: str
) -> None:
    other = make_site(tmp_path, db_url)  # a second site process on the same database
    token = site.account("leaver", "full")
    ok(other.call(token, "GET", "/packages"))
    [account] = ok(site.admin("GET", "/admin-accounts"))
    revoked = ok(site.admin("DELETE", f"/admin-accounts/{account['id']}"))
    assert revoked["revoked_at"] is not None
    for process in (site, other):
        refused = process.call(token, "GET", "/packages")
        assert refused.status_code == 401
        assert refused.json()["detail"] == "admin account 'leaver' was revoked"
    twice = site.admin("DELETE", f"/admin-accounts/{account['id']}")
    assert twice.status_code == 409
    assert twice.json()["detail"] == "admin account 'leaver' was already revoked"
    assert site.admin("DELETE", "/admin-accounts/999").status_code == 404
    taken = site.admin("POST", "/admin-accounts", json={"name": "leaver", "role": "full"})
    assert taken.status_code == 409, "a revoked account's name stays taken (the audit log)"


def test_an_expired_account_is_refused(site: Site, db_url: str) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    token = site.account("temp", "operator", expires_at=soon.isoformat())
    ok(site.call(token, "GET", "/packages"))
    db = Database(db_url)
    try:
        with db.transaction() as s:
            past = datetime.now(UTC) - timedelta(seconds=1)
            s.execute(update(AdminAccount).values(expires_at=past))
    finally:
        db.dispose()
    refused = site.call(token, "GET", "/packages")
    assert refused.status_code == 401
    assert re.fullmatch(r"admin account 'temp' expired at \S+Z", refused.json()["detail"])


def test_the_audit_log_records_changes_and_refusals_not_reads(
    site: Site, world: dict[str, Any]
) -> None:
    first = ok(site.admin("GET", "/audit"))
    ops = site.account("ops", "operator")
    ok(site.call(ops, "POST", "/enrolment-tokens", json={"role": "client"}), 201)
    assert site.call(ops, "POST", "/packages", json={"name": "Nope"}).status_code == 403
    assert site.call(ops, "POST", "/enrolment-tokens", json={"role": "x"}).status_code == 422
    ok(site.call(ops, "GET", "/packages"))
    assert site.call("wrong", "POST", "/packages", json={"name": "X"}).status_code == 401

    entries = ok(site.admin("GET", "/audit"))
    new = entries[: len(entries) - len(first)]
    assert [(e["who"], e["role"], e["method"], e["path"], e["status"]) for e in new] == [
        ("ops", "operator", "POST", "/api/v1/enrolment-tokens", 422),
        ("ops", "operator", "POST", "/api/v1/packages", 403),
        ("ops", "operator", "POST", "/api/v1/enrolment-tokens", 201),
        ("admin-token", "full", "POST", "/api/v1/admin-accounts", 201),
    ]
    assert new[0]["resource"] == "/enrolment-tokens"
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    # The fixture's changes were made with the site's token, each one logged.
    package = world["package"]["id"]
    prefix = {"path_prefix": f"/api/v1/packages/{package}"}
    versions = ok(site.admin("GET", "/audit", params=prefix))
    assert {e["resource"] for e in versions} == {
        "/packages/{package_id}/versions",
        "/packages/{package_id}/programs",
    }


def test_the_audit_log_filters_and_pages(site: Site) -> None:
    ops = site.account("ops", "operator")
    for _ in range(5):
        ok(site.call(ops, "POST", "/enrolment-tokens", json={"role": "client"}), 201)
    mine = ok(site.admin("GET", "/audit", params={"who": "ops"}))
    assert len(mine) == 5 and {e["who"] for e in mine} == {"ops"}
    page = ok(site.admin("GET", "/audit", params={"who": "ops", "limit": 2}))
    rest = ok(site.admin("GET", "/audit", params={"who": "ops", "before_id": page[-1]["id"]}))
    assert [e["id"] for e in page + rest] == [e["id"] for e in mine]
    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert ok(site.admin("GET", "/audit", params={"since": future})) == []
    assert ok(site.admin("GET", "/audit", params={"path_prefix": "/api/v1/boundaries"})) == []
    # LIKE's wildcards in a prefix are literal.
    assert ok(site.admin("GET", "/audit", params={"path_prefix": "%"})) == []
    assert site.admin("GET", "/audit", params={"limit": 0}).status_code == 422
    assert site.admin("GET", "/audit", params={"who": "a\x00b"}).status_code == 422


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"name": "x", "role": "root"}, "role"),
        ({"name": "x"}, "role"),
        ({"name": "", "role": "full"}, "name"),
        ({"name": "a" * 101, "role": "full"}, "name"),
        ({"name": "evil\u202egnp.exe", "role": "full"}, "invisible"),
        ({"name": "tab\there", "role": "full"}, "name"),
        ({"name": "../ops", "role": "full"}, "name"),
        ({"name": " ops", "role": "full"}, "name"),
        ({"name": "Admin-Token", "role": "full"}, "admin token"),
        ({"name": "x", "role": "full", "expires_at": "2000-01-01T00:00:00Z"}, "past"),
        ({"name": "x", "role": "full", "expires_at": "2999-01-01T00:00:00"}, "expires_at"),
        ({"name": "x", "role": "full", "token": "mine"}, "token"),
    ],
)
def test_bad_accounts_are_refused_and_make_nothing(
    site: Site, body: dict[str, Any], words: str
) -> None:
    refused = site.admin("POST", "/admin-accounts", json=body)
    assert refused.status_code == 422, refused.text
    assert words.lower() in refused.json()["detail"].lower()
    assert ok(site.admin("GET", "/admin-accounts")) == []


def test_a_name_is_taken_whatever_its_case(site: Site) -> None:
    site.account("Ops", "operator")
    taken = site.admin("POST", "/admin-accounts", json={"name": "ops", "role": "full"})
    assert taken.status_code == 409
    assert taken.json()["detail"] == "name: an admin account is already named 'Ops' (ID 1)"


def test_the_role_table_names_real_routes_and_every_route_needs_a_credential(
    site: Site,
) -> None:
    paths = site.app.openapi()["paths"]
    for method, route in [*OPERATOR_ACTIONS, *FULL_READS]:
        assert method.lower() in paths.get(API + route, {}), f"{method} {route} is no route"
    admin_routes = [
        (method.upper(), path)
        for path, methods in paths.items()
        if path.startswith(API + "/")
        for method in methods
    ]
    assert len(admin_routes) > 50
    for method, path in admin_routes:
        concrete = re.sub(r"\{[^}]+\}", "1", path).removeprefix(API)
        answer = site.call(None, method, concrete)
        assert answer.status_code == 401, f"{method} {path} answered {answer.status_code}"
