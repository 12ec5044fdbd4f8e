"""Deployment and package status, through a real site server's MP and admin API.

The clients here speak the MP's protocol directly (the messages the client agent sends),
so each state and each race is exercised exactly; tests/e2e checks the agent's own.
On SQLite and PostgreSQL (the `site_server` fixture runs each module on both).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.helpers.api import ok, tar_of, unique, wait_for
from tests.helpers.processes import SiteProcess
from tests.site.mp_world import World, build

pytestmark = pytest.mark.slow  # a real site-server process


def _at(offset_s: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=offset_s)).isoformat()


def say(world: World, client: httpx.Client, type_: str, **fields: Any) -> None:
    """Send one status message about the world's advertisement, as the client agent does."""
    message = {
        "type": type_,
        "advertisement_id": world.advertisement["id"],
        "package_id": world.package["id"],
        "source_version": world.package["source_version"],
        "at": _at(),
        **fields,
    }
    answer = ok(client.post("/status", json={"messages": [message]}))
    assert answer["accepted"] == 1, answer


def status(world: World, **params: Any) -> dict[str, Any]:
    path = f"/advertisements/{world.advertisement['id']}/status"
    answer: dict[str, Any] = ok(world.admin.get(path, params=params))
    return answer


def row_of(world: World, name: str) -> dict[str, Any]:
    [row] = status(world, client=name)["clients"]
    assert row["client_name"] == name
    return row


def settled(world: World, name: str, state: str) -> dict[str, Any]:
    """The client's row once it shows `state` (the MP's answers are written in batches)."""
    result: dict[str, Any] = wait_for(
        f"{name} to be {state}",
        lambda: next(
            (r for r in status(world, client=name)["clients"] if r["state"] == state), None
        ),
        timeout=10,
    )
    return result


def test_a_deployment_counts_each_client_once_in_its_latest_state(
    site_server: SiteProcess,
) -> None:
    world = build(site_server)
    std = world.register("standard_dp", world.standard_dp["name"], world.standard_dp["id"])
    world.report(std, "installed")
    names = {key: unique(f"PC-{key}") for key in ("A", "B", "C")}
    a, b, c = (world.client(names[k], host=h) for k, h in (("A", 20), ("B", 21), ("C", 22)))
    empty = status(world)
    assert (empty["total"], empty["clients"], empty["boundaries"]) == (0, [], [])
    assert set(empty["counts"]) == {
        "policy_received",
        "waiting_for_content",
        "downloading",
        "running",
        "succeeded",
        "failed",
        "not_run",
    }

    say(world, a, "advertisement_received")
    assert row_of(world, names["A"])["state"] == "policy_received"

    # The first attempts find no content: the MP provisions the branch DP on demand.
    assert world.locate(a, host=20)["reason"] == "on_demand_triggered"
    assert world.locate(b, host=21)["reason"] == "on_demand_in_progress"
    waiting = settled(world, names["A"], "waiting_for_content")
    assert waiting["reason"] == "on_demand_triggered"
    assert settled(world, names["B"], "waiting_for_content")["reason"] == "on_demand_in_progress"

    branch = world.register("branch_dp", world.branch_dp["name"], world.branch_dp["id"])
    pulled = {world.standard_dp["name"]: 4096}
    message = {
        "type": "package_state",
        "package_id": world.package["id"],
        "source_version": world.package["source_version"],
        "state": "installed",
        "bytes_by_dp": pulled,
    }
    ok(branch.post("/status", json={"messages": [message]}))

    # The retry is sent to the branch DP, which serves the content over the LAN.
    assert world.locate(a, host=20)["distribution_points"][0]["dp_id"] == world.branch_dp["id"]
    downloading = settled(world, names["A"], "downloading")
    assert downloading["source_dp_id"] == world.branch_dp["id"]
    assert downloading["source_dp_name"] == world.branch_dp["name"]
    say(world, a, "program_started", attempt=1, bytes_by_dp={world.branch_dp["name"]: 1000})
    assert row_of(world, names["A"])["state"] == "running"
    say(world, a, "program_failed", state="retrying", exit_code=1603, detail="exit code 1603")
    failed = row_of(world, names["A"])
    assert (failed["state"], failed["exit_code"]) == ("failed", 1603)
    assert failed["source_dp_name"] == world.branch_dp["name"], "kept from the MP's answer"
    assert status(world)["counts"]["failed"] == 1

    # The retry runs from the cache (no bytes) and succeeds, restart required.
    say(world, a, "program_started", attempt=2)
    say(world, a, "program_succeeded", state="restart_required", exit_code=3010)
    # A message that overtook it on the way changes nothing.
    say(world, a, "program_failed", exit_code=1, at=_at(-60))
    done = row_of(world, names["A"])
    assert (done["state"], done["exit_code"], done["restart_required"]) == (
        "succeeded",
        3010,
        True,
    )
    assert done["source_dp_id"] == world.branch_dp["id"]

    say(world, c, "program_failed", exit_code=5, detail="exit code 5")
    say(world, c, "advertisement_failed", state="failed", exit_code=5, detail="gave up")
    assert row_of(world, names["C"])["reason"] == "gave up"

    summary = status(world)
    assert summary["total"] == summary["matched"] == 3
    counts = {k: v for k, v in summary["counts"].items() if v}
    assert counts == {"succeeded": 1, "failed": 1, "waiting_for_content": 1}
    assert summary["behind"] == 0
    [branch_counts, nowhere] = summary["boundaries"]
    assert branch_counts["boundary_name"].endswith("-br")
    assert (branch_counts["total"], nowhere["boundary_id"], nowhere["total"]) == (2, None, 1)
    assert (
        branch_counts["counts"]["succeeded"] == branch_counts["counts"]["waiting_for_content"] == 1
    )
    assert [r["client_name"] for r in summary["clients"]] == sorted(names.values())

    only_failed = status(world, state="failed")
    assert [r["client_name"] for r in only_failed["clients"]] == [names["C"]]
    assert only_failed["matched"] == 1
    page = status(world, limit=1, offset=1)
    assert [r["client_name"] for r in page["clients"]] == [sorted(names.values())[1]]
    assert (page["matched"], page["limit"], page["offset"]) == (3, 1, 1)
    by_prefix = status(world, client=names["B"].lower())
    assert [r["client_name"] for r in by_prefix["clients"]] == [names["B"]]
    assert by_prefix["matched"] == 1

    package = ok(world.admin.get(f"/packages/{world.package['id']}/status"))
    rows = {r["dp_id"]: r for r in package["distribution_points"]}
    assert (package["installed"], package["dps_total"]) == (2, 2)
    assert package["counts"]["installed"] == 2
    branch_row = rows[world.branch_dp["id"]]
    assert (branch_row["origin"], branch_row["dp_kind"]) == ("on_demand", "branch")
    assert (branch_row["pulled_bytes"], branch_row["served_bytes"]) == (4096, 1000)
    std_row = rows[world.standard_dp["id"]]
    assert (std_row["pulled_bytes"], std_row["served_bytes"]) == (0, 4096)
    [request] = package["on_demand"]
    assert (request["dp_id"], request["state"], request["client_name"]) == (
        world.branch_dp["id"],
        "provisioned",
        names["A"],
    )


def test_a_new_source_version_starts_every_client_afresh(site_server: SiteProcess) -> None:
    world = build(site_server)
    name = unique("PC-NEW")
    client = world.client(name)
    say(world, client, "program_succeeded", state="succeeded", exit_code=0)
    old_version = world.package["source_version"]
    version = ok(
        world.admin.post(
            f"/packages/{world.package['id']}/versions",
            content=tar_of({"setup.sh": b"version two"}),
            headers={"Content-Type": "application/x-tar"},
        ),
        201,
    )
    world.package["source_version"] = version["source_version"]
    behind = status(world)
    assert (behind["source_version"], behind["behind"]) == (version["source_version"], 1)
    assert behind["counts"]["succeeded"] == 1, "it succeeded at the version it had"

    say(world, client, "advertisement_received")
    # A late report of the old version, even with a later time, does not go back.
    say(world, client, "program_failed", exit_code=1, source_version=old_version, at=_at(60))
    row = row_of(world, name)
    assert (row["state"], row["source_version"]) == ("policy_received", version["source_version"])
    assert status(world)["behind"] == 0
    package = ok(world.admin.get(f"/packages/{world.package['id']}/status"))
    assert (package["installed"], package["dps_total"]) == (0, 1), "the DP must get v2 first"
    assert package["distribution_points"][0]["source_version"] == version["source_version"]


def test_a_slow_boundary_that_says_do_not_run_is_not_run(site_server: SiteProcess) -> None:
    world = build(site_server, protected_only=False)
    tag = unique("slow")
    net = f"10.251.{int(tag[-2:], 16)}"
    ok(
        world.admin.post(
            "/boundaries",
            json={"name": tag, "type": "ip_subnet", "value": f"{net}.0/24", "connection": "slow"},
        ),
        201,
    )
    std = world.register("standard_dp", world.standard_dp["name"], world.standard_dp["id"])
    world.report(std, "installed")
    ok(
        world.admin.patch(
            f"/distribution-points/{world.standard_dp['id']}", json={"ip_addresses": [f"{net}.5"]}
        )
    )
    name = unique("PC-SLOW")
    client = world.client(name)
    body = {
        "advertisement_id": world.advertisement["id"],
        "package_id": world.package["id"],
        "source_version": world.package["source_version"],
        "ip_addresses": [f"{net}.20"],
    }
    assert ok(client.post("/content-location", json=body))["reason"] == "slow_boundary_do_not_run"
    row = settled(world, name, "not_run")
    assert row["reason"] == "slow_boundary_do_not_run"


def test_unknown_ids_and_bad_queries_are_refused(site_server: SiteProcess) -> None:
    admin = site_server.admin()
    missing = admin.get("/advertisements/999999/status")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "advertisement 999999 does not exist"
    gone = admin.get("/packages/PS1FFFFF/status")
    assert gone.status_code == 404 and "package PS1FFFFF does not exist" in gone.json()["detail"]
    world = build(site_server)
    path = f"/advertisements/{world.advertisement['id']}/status"
    for params, field in (
        ({"state": "finished"}, "state"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"offset": -1}, "offset"),
        ({"client": ""}, "client"),
        ({"limit": "many"}, "limit"),
    ):
        refused = admin.get(path, params=params)
        assert refused.status_code == 422, (params, refused.text)
        assert field in refused.text, (params, refused.text)
    assert admin.get("/advertisements/abc/status").status_code == 422
    assert admin.get("/advertisements/99999999999/status").status_code == 422
    # A message about an advertisement that does not exist is logged, and moves nothing.
    client = world.client(unique("PC-GHOST"))
    message = {"type": "program_started", "advertisement_id": 999999, "source_version": 1}
    assert ok(client.post("/status", json={"messages": [message]}))["accepted"] == 1
    paths = httpx.get(site_server.url + "/openapi.json").json()["paths"]
    for path, model in (
        ("/api/v1/advertisements/{advertisement_id}/status", "AdvertisementStatusOut"),
        ("/api/v1/packages/{package_id}/status", "PackageStatusOut"),
    ):
        assert model in str(paths[path]["get"]["responses"]["200"])
