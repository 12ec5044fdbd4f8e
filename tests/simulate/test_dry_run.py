"""`peerdp simulate --advertisement`: the dry run on a real site server (SQLite and
PostgreSQL) forecasts what the MP then answers, and changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.api import ok, unique
from tests.helpers.processes import SiteProcess, peerdp_cmd
from tests.helpers.sites import module_site
from tests.site.mp_world import build

pytestmark = pytest.mark.slow  # a real site-server process


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SiteProcess]:
    with module_site(request.param, tmp_path_factory) as server:
        yield server


def simulate(site: SiteProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PEERDP_SITE_URL": site.url,
        "PEERDP_ADMIN_TOKEN": site.admin_token,
        "COLUMNS": "120",
    }
    return subprocess.run(
        peerdp_cmd("simulate", *args), env=env, capture_output=True, text=True, timeout=120
    )


def test_the_dry_run_forecasts_what_the_mp_answers(site: SiteProcess, tmp_path: Path) -> None:
    world = build(site)
    std = world.register("standard_dp", world.standard_dp["name"], world.standard_dp["id"])
    world.report(std, "installed")
    names = sorted(unique("PC") for _ in range(3))
    clients = {name: world.client(name, host=20 + n) for n, name in enumerate(names)}
    ok(
        world.admin.post(
            f"/collections/{world.collection['id']}/members",
            json={"member_names": ["NEVER-REGISTERED"]},
        )
    )
    out = tmp_path / "dry.json"
    done = simulate(site, "--advertisement", str(world.advertisement["id"]), "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert f"on demand: {world.branch_dp['name']}" in done.stdout
    forecast = json.loads(out.read_text())
    branch = world.branch_dp["name"]
    assert forecast["on_demand"] == {branch: "add"}
    size = forecast["package_bytes"]
    assert size > 0 and forecast["branch_dp_pulls_bytes"] == {branch: size}
    assert forecast["wan_bytes"] == size
    assert forecast["never"] == {"not_registered": 1}
    by_name = {c["name"]: c for c in forecast["clients"]}
    assert [by_name[n]["first"] for n in names] == [
        "answered with no DP: on_demand_triggered",
        "answered with no DP: on_demand_in_progress",
        "answered with no DP: on_demand_in_progress",
    ]
    assert {(c["dp"], c["locality"]) for c in forecast["clients"]} == {(branch, "local")}

    # Nothing changed on the site; then the real MP answers as forecast.
    assert set(world.dp_list()) == {world.standard_dp["id"]}
    reasons = [world.locate(clients[name], host=20 + n)["reason"] for n, name in enumerate(names)]
    assert reasons == ["on_demand_triggered", "on_demand_in_progress", "on_demand_in_progress"]


def test_bad_requests(site: SiteProcess, tmp_path: Path) -> None:
    done = simulate(site, "--advertisement", "no-such-advertisement")
    assert done.returncode == 1 and done.stderr.startswith("Error: ")
    done = simulate(site, str(tmp_path / "x.toml"), "--advertisement", "1")
    assert done.returncode == 1 and "not both" in done.stderr


def test_a_deployment_not_advertised_yet(site: SiteProcess, tmp_path: Path) -> None:
    world = build(site)
    std = world.register("standard_dp", world.standard_dp["name"], world.standard_dp["id"])
    world.report(std, "installed")
    names = sorted(unique("PC") for _ in range(2))
    for n, name in enumerate(names):
        world.client(name, host=40 + n)
    proposal = ok(world.admin.post("/collections", json={"name": unique("proposal")}), 201)
    ok(world.admin.post(f"/collections/{proposal['id']}/members", json={"member_names": names}))
    advertisements = len(ok(world.admin.get("/advertisements")))
    out = tmp_path / "proposal.json"
    done = simulate(
        site,
        "--package",
        world.package["id"],
        "--collection",
        proposal["name"],
        "--protected-only",
        "--json",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "not advertised yet" in done.stdout
    forecast = json.loads(out.read_text())
    branch = world.branch_dp["name"]
    assert (forecast["advertisement_id"], forecast["collection_id"]) == (None, proposal["id"])
    assert forecast["on_demand"] == {branch: "add"}
    assert [c["first"] for c in sorted(forecast["clients"], key=lambda c: c["name"])] == [
        "answered with no DP: on_demand_triggered",
        "answered with no DP: on_demand_in_progress",
    ]
    assert {(c["dp"], c["locality"]) for c in forecast["clients"]} == {(branch, "local")}
    # Nothing was made: no advertisement, no DP added.
    assert len(ok(world.admin.get("/advertisements"))) == advertisements
    assert set(world.dp_list()) == {world.standard_dp["id"]}


def test_a_proposal_needs_a_package_and_a_collection(site: SiteProcess) -> None:
    done = simulate(site, "--package", "PS100001")
    assert done.returncode == 1 and "both --package and --collection" in done.stderr
    done = simulate(site, "--advertisement", "1", "--collection", "1")
    assert done.returncode == 1 and "not both" in done.stderr
    done = simulate(site, "--package", "NO-SUCH", "--collection", "1")
    assert done.returncode == 1 and done.stderr.startswith("Error: ")
