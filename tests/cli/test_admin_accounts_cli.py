"""`peerdp admin account` and `peerdp audit` against a real site server (SQLite and
PostgreSQL): an account's secret printed once, its role enforced, revocation, the log."""

from __future__ import annotations

import re

import pytest

from peerdp.admin_client import AdminClient
from peerdp.admin_client import api as api_module
from tests.cli.support import Cli
from tests.helpers.api import unique
from tests.helpers.processes import SiteProcess

pytestmark = pytest.mark.slow  # the admin CLI runs as a process against a real site server


def test_an_operator_account_from_creation_to_revocation(cli: Cli) -> None:
    name = unique("ops")
    created = cli.ok("admin", "account", "add", name, "--role", "operator", "--expires", "30d")
    assert "shown only once" in created
    [secret] = re.findall(r"pda_[A-Za-z0-9_-]+", created)
    [listed] = [row for row in cli.json("admin", "account", "list") if row["name"] == name]
    assert listed["role"] == "operator" and listed["expires_at"] is not None
    assert secret not in cli.ok("admin", "account", "list")

    as_operator = {"PEERDP_ADMIN_TOKEN": secret}
    token = cli.json("token", "create", "--role", "client", **as_operator)
    refused = cli.fails(
        "boundary",
        "add",
        unique("B"),
        "--type",
        "ip_subnet",
        "--value",
        "10.77.0.0/24",
        **as_operator,
    )
    assert "needs the full role" in refused and f"{name!r} holds the operator role" in refused
    assert "needs the full role" in cli.fails("admin", "account", "list", **as_operator)

    log = cli.json("audit", "--who", name, **as_operator)  # every role reads the log
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("POST", "/api/v1/boundaries", 403),
        ("POST", "/api/v1/enrolment-tokens", 201),
    ]
    table = cli.ok("audit", "--who", name, "--since", "1h", "--path", "/api/v1/enrolment")
    assert "/api/v1/enrolment-tokens" in table and "/api/v1/boundaries" not in table
    assert token["id"] > 0

    assert f"Revoked admin account {name!r}" in cli.ok("admin", "account", "revoke", name)
    assert "already revoked" in cli.fails("admin", "account", "revoke", name)
    assert "was revoked" in cli.fails("token", "list", **as_operator)


def test_bad_accounts_are_refused_in_one_line(cli: Cli) -> None:
    bad_role = cli.run("admin", "account", "add", unique("x"), "--role", "root")
    assert bad_role.returncode == 2 and "root" in bad_role.stderr
    assert "invisible" in cli.fails("admin", "account", "add", "ev\u202eil", "--role", "full")
    assert (
        "duration"
        in cli.run("admin", "account", "add", "y", "--role", "full", "--expires", "soon").stderr
    )
    name = unique("dup")
    cli.ok("admin", "account", "add", name, "--role", "read_only")
    assert "already named" in cli.fails("admin", "account", "add", name, "--role", "full")
    assert "no admin account" in cli.fails("admin", "account", "revoke", "nobody-at-all")


def test_the_admin_client_pages_through_the_audit_log(
    site_server: SiteProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique("pager")
    with AdminClient(site_server.url, site_server.admin_token) as admin:
        secret = admin.create_admin_account(name, "operator")["token"]
        with AdminClient(site_server.url, secret) as operator:
            for _ in range(5):
                operator.post("/enrolment-tokens", {"role": "client"})
            whole = operator.audit(who=name, limit=100)
            monkeypatch.setattr(api_module, "AUDIT_PAGE", 2)  # pages of 2: 2 + 2 + 1
            assert operator.audit(who=name, limit=100) == whole
            assert operator.audit(who=name, limit=3) == whole[:3]
        assert len(whole) == 5 and {e["status"] for e in whole} == {201}
        [account] = [a for a in admin.admin_accounts() if a["name"] == name]
        assert admin.revoke_admin_account(account["id"])["revoked_at"] is not None
