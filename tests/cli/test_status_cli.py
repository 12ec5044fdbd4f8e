"""`peerdp advertisement status` and `peerdp package status` against a real site server
(SQLite and PostgreSQL), and the admin client's calls under them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from peerdp.admin_client import AdminClient, AdminError
from tests.cli.support import Cli
from tests.helpers.api import ok, unique
from tests.helpers.processes import SiteProcess
from tests.site.mp_world import build

pytestmark = pytest.mark.slow  # the admin CLI runs as a process against a real site server


def test_advertisement_and_package_status(cli: Cli, site_server: SiteProcess) -> None:
    world = build(site_server)
    names = [unique("PC-OK"), unique("PC-BAD")]
    for name, (type_, code) in zip(
        names, (("program_succeeded", 0), ("program_failed", 1603)), strict=True
    ):
        client = world.client(name)
        message = {
            "type": type_,
            "advertisement_id": world.advertisement["id"],
            "package_id": world.package["id"],
            "source_version": world.package["source_version"],
            "exit_code": code,
            "detail": f"exit code {code}",
            "at": datetime.now(UTC).isoformat(),
        }
        ok(client.post("/status", json={"messages": [message]}))

    adv_name = world.advertisement["name"]
    table = cli.ok("advertisement", "status", adv_name)
    assert "2 client(s) reported" in table
    assert all(name in table for name in names)
    assert "1603" in table and "succeeded" in table
    failed = cli.json("advertisement", "status", adv_name, "--state", "failed")
    assert [r["client_name"] for r in failed["clients"]] == [names[1]]
    assert failed["counts"]["succeeded"] == failed["counts"]["failed"] == 1
    page = cli.json("advertisement", "status", str(world.advertisement["id"]), "--limit", "1")
    assert (len(page["clients"]), page["matched"]) == (1, 2)
    assert "Clients 1-1 of 2 (--offset for more)" in cli.ok(
        "advertisement", "status", adv_name, "--limit", "1"
    )

    package = cli.json("package", "status", world.package["name"])
    assert (package["package_id"], package["dps_total"]) == (world.package["id"], 1)
    text = cli.ok("package", "status", world.package["id"].lower())
    assert f"installed on {package['installed']} of 1 DP(s)" in text
    assert world.standard_dp["name"] in text

    assert "no advertisement has the name or ID" in cli.fails("advertisement", "status", "nope")
    assert "advertisement 999999 does not exist" in cli.fails("advertisement", "status", "999999")
    refused = cli.run("advertisement", "status", adv_name, "--state", "finished")
    assert refused.returncode == 2 and "finished" in refused.stderr

    with AdminClient(site_server.url, site_server.admin_token) as api:
        assert (
            api.advertisement_status(world.advertisement["id"], client=names[0][:5])["matched"] >= 1
        )
        assert api.package_status(world.package["id"])["name"] == world.package["name"]
        with pytest.raises(AdminError) as bad:
            api.advertisement_status(world.advertisement["id"], limit=0)
        assert bad.value.status == 422
