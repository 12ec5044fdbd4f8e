"""Deleting a package through the real admin API and MP: every DP holding it (standard and
branch) is told to remove it, the package stays, deleted, while they do, then it goes."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers.api import ok, tar_of, unique, wait_for
from tests.helpers.processes import SiteProcess
from tests.site.mp_world import build

pytestmark = pytest.mark.slow  # real site-server processes


def test_deleting_a_package_removes_it_from_every_dp_then_it_goes(
    site_server: SiteProcess,
) -> None:
    world = build(site_server)
    admin, package_id = world.admin, world.package["id"]
    std = world.register("standard_dp", world.standard_dp["name"], world.standard_dp["id"])
    world.report(std, "installed")
    branch = world.register("branch_dp", world.branch_dp["name"], world.branch_dp["id"])
    rows_path = f"/packages/{package_id}/distribution-points"
    ok(admin.post(rows_path, json={"dp_id": world.branch_dp["id"]}), 201)
    world.report(branch, "installed")
    never = ok(
        admin.post("/distribution-points", json={"name": unique("dp"), "kind": "branch"}), 201
    )
    ok(admin.post(rows_path, json={"dp_id": never["id"]}), 201)
    pc = world.client(unique("pc"))
    assert [a["package_id"] for a in ok(pc.get("/policy"))["advertisements"]] == [package_id]

    answer = ok(admin.delete(f"/packages/{package_id}"), 202)

    assert answer["removing_from"] == 2 and "removed from 2 DP(s)" in answer["detail"]
    rows = world.dp_list()
    # A DP that never registered holds nothing: its row goes at once.
    assert set(rows) == {world.standard_dp["id"], world.branch_dp["id"]}
    assert all(r["state"].startswith("removal_") and r["detail"] for r in rows.values())
    package = ok(admin.get(f"/packages/{package_id}"))
    assert package["deleted_at"] is not None
    assert package_id in [p["id"] for p in ok(admin.get("/packages"))]
    # It is offered to no client any more, and nothing can be added to it.
    assert admin.get(f"/advertisements/{world.advertisement['id']}").status_code == 404
    assert ok(pc.get("/policy"))["advertisements"] == []
    refusals = [
        admin.patch(f"/packages/{package_id}", json={"on_demand": False}),
        admin.post(
            f"/packages/{package_id}/versions",
            content=tar_of({"a.txt": b"a"}),
            headers={"Content-Type": "application/x-tar"},
        ),
        admin.post(rows_path, json={"dp_id": never["id"]}),
        admin.post(f"/packages/{package_id}/programs", json={"name": "x", "command_line": "x"}),
    ]
    for refused in refusals:
        assert refused.status_code == 409 and "deleted" in refused.json()["detail"], refused.text
    same_name = admin.post("/packages", json={"name": package["name"]})
    assert same_name.status_code == 409 and "being removed" in same_name.json()["detail"]

    # The branch DP learns it through its policy, deletes the content and reports it.
    policy = ok(branch.get("/policy"))
    assert policy["packages"] == []
    assert [r["id"] for r in policy["remove"]] == [package_id]
    world.report(branch, "removed")
    assert set(world.dp_list()) == {world.standard_dp["id"]}
    # The standard DP (its URL answers nothing) is retried by the distribution manager.
    row = wait_for(
        "the removal from the unreachable standard DP to be retried",
        lambda: (
            (r := world.dp_list()[world.standard_dp["id"]])["state"] == "removal_retrying" and r
        ),
    )
    assert "cannot reach" in row["detail"]
    assert ok(admin.get(f"/packages/{package_id}"))["deleted_at"] is not None

    # It reports the content removed (as a DP does at start): the last row goes, and the
    # package with it.
    world.report(std, "removed")
    assert admin.get(f"/packages/{package_id}").status_code == 404
    assert admin.delete(f"/packages/{package_id}").status_code == 404
    types = [
        m["type"] for m in ok(admin.get("/status-messages", params={"package_id": package_id}))
    ]
    assert types.index("package_deleted") < types.index("package_removed")
    assert ok(admin.post("/packages", json={"name": package["name"]}), 201)["id"] != package_id


def test_deleting_again_retries_and_deleting_the_last_dp_ends_it(site_server: SiteProcess) -> None:
    world = build(site_server)
    admin, package_id = world.admin, world.package["id"]
    std = world.register("standard_dp", world.standard_dp["name"], world.standard_dp["id"])
    world.report(std, "installed")

    first = ok(admin.delete(f"/packages/{package_id}"), 202)
    again = ok(admin.delete(f"/packages/{package_id}"), 202)
    assert first["removing_from"] == again["removing_from"] == 1
    deleted = [
        m
        for m in ok(admin.get("/status-messages", params={"package_id": package_id}))
        if m["type"] == "package_deleted"
    ]
    assert len(deleted) == 1

    # The DP is deleted from the site (never to come back): nothing holds the package now.
    assert admin.delete(f"/distribution-points/{world.standard_dp['id']}").status_code == 204
    assert admin.get(f"/packages/{package_id}").status_code == 404


def test_a_package_no_dp_holds_goes_at_once(site_server: SiteProcess) -> None:
    admin: httpx.Client = site_server.admin()
    package = ok(admin.post("/packages", json={"name": unique("pkg")}), 201)
    ok(
        admin.post(
            f"/packages/{package['id']}/versions",
            content=tar_of({"a.txt": b"a"}),
            headers={"Content-Type": "application/x-tar"},
        ),
        201,
    )
    assert admin.delete(f"/packages/{package['id']}").status_code == 204
    assert admin.get(f"/packages/{package['id']}").status_code == 404
