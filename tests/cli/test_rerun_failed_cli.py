"""`peerdp advertisement rerun ID --failed`: one rerun for each client the advertisement
failed on, refused when none failed and when given with --client."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from peerdp.store.db import Database
from peerdp.store.models import DeploymentStateRow, utcnow
from tests.cli.support import Cli
from tests.cli.test_admin_cli import ok, package_with_content
from tests.helpers.api import unique
from tests.helpers.processes import SiteProcess

pytestmark = pytest.mark.slow  # the CLI as a process against a real site server


def states(site: SiteProcess, advertisement: int, by_client: dict[str, str]) -> None:
    """Where the advertisement stands on each client, as their status messages would say
    (written to the site's database: no client agents run here)."""
    db = Database(site.db_url)
    try:
        with db.transaction() as s:
            s.add_all(
                DeploymentStateRow(
                    advertisement_id=advertisement,
                    client_name=name,
                    state=state,
                    source_version=1,
                    at=utcnow(),
                )
                for name, state in by_client.items()
            )
    finally:
        db.dispose()


def test_rerun_on_the_failed_clients(
    cli: Cli, api: httpx.Client, site_server: SiteProcess, tmp_path: Path
) -> None:
    package_id = package_with_content(api, tmp_path)
    members = ["PC-01", "PC-02", "PC-03"]
    collection = ok(api.post("/collections", json={"name": unique("c"), "member_names": members}))
    made = ok(
        api.post(
            "/advertisements",
            json={
                "name": unique("deploy"),
                "package_id": package_id,
                "program_name": "Install",
                "collection_id": collection["id"],
            },
        )
    )
    ident = str(made["id"])

    none_failed = cli.fails("advertisement", "rerun", ident, "--failed")
    assert "has failed on no client" in none_failed and none_failed.count("\n") == 1

    states(site_server, made["id"], {"PC-01": "failed", "PC-02": "succeeded", "PC-03": "failed"})
    said = cli.ok("advertisement", "rerun", ident, "--failed")
    assert f"Advertisement {made['id']} will run again on the 2 client(s) it failed on" in " ".join(
        said.split()
    )
    again = cli.json("advertisement", "rerun", ident, "--failed")
    assert again["failed_clients"] == 2 and again["client_name"] is None

    both = cli.fails("advertisement", "rerun", ident, "--failed", "--client", "PC-01")
    assert "--client or --failed, not both" in both
