"""The seed's flow through the real management point, each condition, and the storm."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.helpers.api import ok, unique
from tests.helpers.processes import SiteProcess
from tests.site.mp_world import World, build, two_site_processes

pytestmark = pytest.mark.slow  # real site-server processes


def test_seed_flow_first_attempt_empty_then_branch_dp_returned(site_server: SiteProcess) -> None:
    world = build(site_server)
    std = world.register("standard_dp", world.standard_dp["name"], world.standard_dp["id"])
    world.report(std, "installed")
    client = world.client("PC-SEED")

    first = world.locate(client)
    assert first["distribution_points"] == []
    assert first["reason"] == "on_demand_triggered"
    row = world.dp_list()[world.branch_dp["id"]]
    assert (row["state"], row["origin"]) == ("install_pending", "on_demand")
    assert row["detail"], "a pending row always says what it waits for"
    requests = ok(
        world.admin.get("/on-demand-requests", params={"package_id": world.package["id"]})
    )
    assert [(r["dp_id"], r["state"], r["client_name"]) for r in requests] == [
        (world.branch_dp["id"], "provisioned", "PC-SEED")
    ]

    again = world.locate(client)
    assert (again["distribution_points"], again["reason"]) == ([], "on_demand_in_progress")

    branch = world.register("branch_dp", world.branch_dp["name"], world.branch_dp["id"])
    policy = ok(branch.get("/policy"))
    [assigned] = policy["packages"]
    assert assigned["id"] == world.package["id"]
    assert [s["dp_id"] for s in assigned["sources"]] == [world.standard_dp["id"]]
    world.report(branch, "installed")

    final = world.locate(client)
    assert [d["dp_id"] for d in final["distribution_points"]] == [world.branch_dp["id"]]
    located = final["distribution_points"][0]
    assert located["protected"] and located["locality"] == "local"
    assert located["access_token"]
    assert len(world.messages("on_demand_triggered")) == 1
    answers = [m["state"] for m in world.messages("content_location", at_least=3)]
    assert answers == ["on_demand_triggered", "on_demand_in_progress", None]


def test_delayed_until_a_bits_standard_dp_holds_the_content(site_server: SiteProcess) -> None:
    world = build(site_server)
    client = world.client("PC-DELAY")
    first = world.locate(client)
    assert (first["distribution_points"], first["reason"]) == ([], "on_demand_delayed")
    assert world.branch_dp["id"] not in world.dp_list()
    [request] = ok(
        world.admin.get("/on-demand-requests", params={"package_id": world.package["id"]})
    )
    assert request["state"] == "delayed" and request["provisioned_at"] is None

    # The standard DP's report alone carries the request out: no further client request.
    std = world.register("standard_dp", world.standard_dp["name"], world.standard_dp["id"])
    world.report(std, "installed")
    [request] = ok(
        world.admin.get("/on-demand-requests", params={"package_id": world.package["id"]})
    )
    assert request["state"] == "provisioned" and request["provisioned_at"]
    row = world.dp_list()[world.branch_dp["id"]]
    assert (row["state"], row["origin"]) == ("install_pending", "on_demand")
    assert len(world.messages("on_demand_delayed")) == 1
    assert len(world.messages("on_demand_triggered")) == 1


@pytest.mark.parametrize(
    ("options", "reason", "failed"),
    [
        ({"protected_branch": False}, "no_content_accessible", "(b)"),
        ({"protected_only": False}, "no_content_accessible", "(c)"),
        ({"on_demand": False}, "no_content_accessible", "(d)"),
    ],
)
def test_each_condition_failing_alone_means_no_provisioning(
    site_server: SiteProcess, options: dict[str, bool], reason: str, failed: str
) -> None:
    world = build(site_server, **options)
    std = world.register("standard_dp", world.standard_dp["name"], world.standard_dp["id"])
    world.report(std, "installed")
    client = world.client(unique("PC-COND"))
    answer = world.locate(client)
    if options.get("protected_only") is False:
        # Not protected-only: the unprotected standard DP is usable (remote not allowed though)
        assert answer["reason"] in {reason, "slow_boundary_do_not_run"}
    else:
        assert answer["reason"] == reason
    assert answer["distribution_points"] == []
    assert failed in answer["detail"]
    assert world.branch_dp["id"] not in world.dp_list()
    assert world.messages("on_demand_triggered") == []


def test_not_targeted_client_gets_nothing(site_server: SiteProcess) -> None:
    world = build(site_server)
    outsider = world.register("client", "PC-OUTSIDER", ip_addresses=[f"{world.branch_net}.9"])
    answer = world.locate(outsider, host=9)
    assert answer["reason"] == "not_targeted"
    assert world.branch_dp["id"] not in world.dp_list()


def _storm(world: World, clients: list[httpx.Client]) -> list[str]:
    barrier = threading.Barrier(len(clients))

    def ask(client: httpx.Client) -> str:
        barrier.wait()
        return str(world.locate(client)["reason"])

    with ThreadPoolExecutor(len(clients)) as pool:
        return list(pool.map(ask, clients))


def _assert_added_once(world: World, reasons: list[str]) -> None:
    assert reasons.count("on_demand_triggered") == 1, reasons
    assert set(reasons) == {"on_demand_triggered", "on_demand_in_progress"}
    rows = [r for r in world.dp_list().values() if r["origin"] == "on_demand"]
    assert len(rows) == 1
    assert len(world.messages("on_demand_triggered")) == 1
    requests = ok(
        world.admin.get("/on-demand-requests", params={"package_id": world.package["id"]})
    )
    assert len(requests) == 1


def test_storm_from_one_branch_adds_the_branch_dp_exactly_once(site_server: SiteProcess) -> None:
    world = build(site_server)
    std = world.register("standard_dp", world.standard_dp["name"], world.standard_dp["id"])
    world.report(std, "installed")
    clients = [world.client(f"PC-STORM-{i}", host=30 + i) for i in range(24)]
    _assert_added_once(world, _storm(world, clients))


def test_storm_across_two_site_server_processes(tmp_path: Any) -> None:
    with two_site_processes(tmp_path) as (first, second):
        world = build(first)
        std = world.register("standard_dp", world.standard_dp["name"], world.standard_dp["id"])
        world.report(std, "installed")
        clients = [world.client(f"PC-TWO-{i}", host=30 + i) for i in range(24)]
        for client in clients[1::2]:  # half of them talk to the other process
            client.base_url = httpx.URL(second.url + "/mp/v1")
        _assert_added_once(world, _storm(world, clients))
