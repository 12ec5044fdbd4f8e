"""Names wherever IDs are taken: every command finds an object by its ID or its name
through one resolver, and package IDs in any case (the CLI as a process, real site)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from peerdp.cli.commands import advertisement, boundary, collection, dp, machines, package
from peerdp.cli.resources import ADVERTISEMENT, BOUNDARY, CLIENT, COLLECTION, DP, PACKAGE, Lookup
from tests.cli.support import Cli, write_files
from tests.helpers.api import ok, unique
from tests.helpers.processes import SiteProcess


@pytest.mark.slow
def test_objects_by_name_everywhere(
    cli: Cli, api: httpx.Client, site_server: SiteProcess, tmp_path: Path
) -> None:
    net = unique("BRANCH-NET")
    made = cli.json("boundary", "add", net, "--type", "ip_subnet", "--value", "10.44.0.0/24")
    hq, br = unique("HQ-DP"), unique("BR-DP")
    cli.json("dp", "add", hq, "--kind", "standard")
    branch = cli.json("dp", "add", br, "--kind", "branch", "--protect", net)
    assert branch["protected_boundary_ids"] == [made["id"]]
    assert cli.json("dp", "show", br)["id"] == branch["id"]
    assert cli.json("dp", "set", br.lower(), "--no-bits")["bits_enabled"] is False

    name = unique("Acme Viewer")
    folder = write_files(tmp_path / "acme", {"setup.cmd": unique("install").encode()})
    package_id = cli.json("package", "import", name, str(folder), "--on-demand")["package"]["id"]
    assert [v["source_version"] for v in cli.json("package", "versions", name)] == [1]
    assert cli.json("package", "manifest", package_id.lower(), "1")["package_id"] == package_id
    assert cli.json("package", "show", package_id.lower())["id"] == package_id
    assert cli.json("package", "show", name)["id"] == package_id
    cli.json("program", "add", name, "Install", "--command-line", "setup.cmd")
    row = cli.json("package", "dp", "add", package_id.lower(), hq)
    assert row["package_id"] == package_id and row["dp_name"] == hq
    assert [r["dp_name"] for r in cli.json("package", "dp", "list", name)] == [hq]
    cli.json("package", "dp", "remove", name, hq)

    group, pc = unique("Branch PCs"), unique("PC")
    cli.json("collection", "add", group)
    assert cli.json("collection", "add-members", group, pc)["member_names"] == [pc]
    adv_name = unique("Acme to branch")
    adv = cli.json(
        "advertisement", "add", adv_name, "--package", name, "--program", "Install",
        "--collection", group, "--protected-only",
    )  # fmt: skip
    assert adv["package_id"] == package_id
    assert cli.json("advertisement", "set", adv_name, "--allow-remote")["allow_remote"] is True

    token = cli.json("token", "create", "--role", "branch_dp", "--dp", br)
    assert token["dp_id"] == branch["id"]

    client_token = cli.json("token", "create", "--role", "client")["token"]
    facts = {"token": client_token, "name": pc, "ip_addresses": ["10.44.0.7"]}
    ok(httpx.post(site_server.url + "/mp/v1/register", json=facts, timeout=30), 201)
    assert cli.json("client", "show", pc)["name"] == pc
    explained = cli.json("explain", "--client", pc, "--advertisement", adv_name)
    assert explained["advertisement_id"] == adv["id"]
    by_names = cli.json("status", "list", "--package", name, "--dp", hq)
    assert by_names and {m["dp_id"] for m in by_names} == {row["dp_id"]}
    assert cli.json("status", "list", "--advertisement", adv_name) == []
    cli.json("client", "delete", pc)
    assert api.get("/clients", params={"name": pc}).json() == []

    cli.json("advertisement", "delete", adv_name)
    cli.json("collection", "delete", group)
    cli.json("package", "delete", name)
    cli.json("dp", "delete", br)
    cli.json("boundary", "delete", net)
    assert api.get(f"/boundaries/{made['id']}").status_code == 404


@pytest.mark.slow
def test_a_name_in_another_case_is_found_unless_it_is_ambiguous(cli: Cli) -> None:
    name = unique("Lan")
    upper = cli.json("boundary", "add", name.upper(), "--type", "ad_site", "--value", "A")
    assert cli.json("boundary", "show", name)["id"] == upper["id"]
    lower = cli.json("boundary", "add", name.lower(), "--type", "ad_site", "--value", "B")
    assert cli.json("boundary", "show", name.lower())["id"] == lower["id"]  # exact wins
    refused = cli.fails("boundary", "show", name)
    assert f"several boundaries are named {name!r}" in refused
    assert f"IDs {upper['id']}, {lower['id']}" in refused and "give the ID" in refused


@pytest.mark.slow
def test_a_name_that_names_nothing_is_one_line(cli: Cli) -> None:
    assert "no distribution point has the name or ID 'no-such-dp'" in cli.fails(
        "dp", "show", "no-such-dp"
    )
    assert "no package has the name or ID" in cli.fails("package", "dp", "list", "nothing here")
    assert "an enrolment token ID is a number" in cli.fails("token", "show", "first")
    # The site's own refusals name the field, in words (not pydantic's wording).
    bad = cli.fails("dp", "add", unique("dp"), "--kind", "branch", "--ip-address", "10.0.0.0/8")
    assert bad.startswith("Error: ip_addresses.0: ") and bad.count("\n") == 1
    assert "Value error" not in bad and "Input should" not in bad


@pytest.mark.parametrize(
    ("resource", "lookup"),
    [
        (boundary.BOUNDARIES, BOUNDARY),
        (dp.DPS, DP),
        (package.PACKAGES, PACKAGE),
        (collection.COLLECTIONS, COLLECTION),
        (advertisement.ADVERTISEMENTS, ADVERTISEMENT),
        (machines.CLIENTS, CLIENT),
    ],
)
def test_each_group_finds_its_objects_as_the_other_commands_do(
    resource: Lookup, lookup: Lookup
) -> None:
    assert Lookup(**{f: getattr(resource, f) for f in lookup.__dataclass_fields__}) == lookup
