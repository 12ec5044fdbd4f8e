"""The seed's on-demand provisioning, end to end, with real processes only.

One head office per module and database: a site server (`site_server`), a BITS-enabled
standard DP (`peerdp dp serve`) and a branch office whose protected branch DP is a real
`peerdp branch serve`, both registered with enrolment tokens. Every client is a
`peerdp client run --once --json` with its own data directory, placed in a subnet with
`--ip-address`. Each test deploys its own package (and, where it needs one, its own
extra branch subnet), so the tests share the processes but not their worlds.

Each seed condition is shown failing on its own (the client's answer, its status
messages, the package's DP list, the on-demand requests), then, with that one condition
made true, on-demand provisioning firing.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import re
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.api import ok, tar_of, unique, wait_for
from tests.helpers.processes import SiteProcess, peerdp_cmd
from tests.machine.support import AgentProcess, start_agent

pytestmark = pytest.mark.slow  # a whole site of real processes

HQ_NET = "192.168.70"
BRANCH_NET = "10.70.1"
# Extra branch subnets, one per test that needs one (never the branch office's).
_EXTRA_NETS = itertools.count(random.randint(0, 10_000))
WAIT = 120.0  # generous bound on anything asynchronous: the suite runs in parallel


def metric(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics", timeout=30).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name} at {url}/metrics")


# -- the head office and the branch office -----------------------------------------------


@dataclass
class Office:
    site: SiteProcess
    admin: httpx.Client
    tmp: Path
    branch_boundary: dict[str, Any]
    standard_dp: dict[str, Any]  # BITS-enabled
    plain_dp: dict[str, Any]  # a standard DP that is not BITS-enabled
    branch_dp: dict[str, Any]
    branch: AgentProcess
    client_token: str
    hosts: Iterator[int] = field(default_factory=lambda: itertools.count(20))

    def token(self, role: str, dp_id: int | None = None, max_uses: int = 1) -> str:
        body: dict[str, Any] = {"role": role, "max_uses": max_uses}
        if dp_id is not None:
            body["dp_id"] = dp_id
        return str(ok(self.admin.post("/enrolment-tokens", json=body), 201)["token"])


def _boundary(admin: httpx.Client, name: str, net: str) -> dict[str, Any]:
    body = {"name": name, "type": "ip_subnet", "value": f"{net}.0/24", "connection": "fast"}
    answer: dict[str, Any] = ok(admin.post("/boundaries", json=body), 201)
    return answer


def _dp(admin: httpx.Client, **body: Any) -> dict[str, Any]:
    answer: dict[str, Any] = ok(admin.post("/distribution-points", json=body), 201)
    return answer


@pytest.fixture(scope="module")
def office(site_server: SiteProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    site = site_server
    admin = site.admin()
    tmp = tmp_path_factory.mktemp("office")
    tag = unique("e2e")
    _boundary(admin, f"{tag}-HQ", HQ_NET)
    branch_boundary = _boundary(admin, f"{tag}-BRANCH", BRANCH_NET)
    dps = {
        "hq-dp": _dp(admin, name=f"{tag}-HQ-DP", kind="standard", bits_enabled=True,
                     ip_addresses=[f"{HQ_NET}.10"]),
        "hq-plain": _dp(admin, name=f"{tag}-HQ-PLAIN", kind="standard", bits_enabled=False,
                        ip_addresses=[f"{HQ_NET}.11"]),
        "br-dp": _dp(admin, name=f"{tag}-BR-DP", kind="branch", bits_enabled=True,
                     protected_boundary_ids=[branch_boundary["id"]],
                     ip_addresses=[f"{BRANCH_NET}.10"]),
    }  # fmt: skip

    def args(key: str, role: str, ip: str) -> list[str]:
        body = {"role": role, "dp_id": dps[key]["id"], "max_uses": 1}
        token = str(ok(admin.post("/enrolment-tokens", json=body), 201)["token"])
        return ["--site", site.url, "--token", token, "--data-dir", str(tmp / key),
                "--name", dps[key]["name"], "--ip-address", ip]  # fmt: skip

    commands = {
        "hq-dp": ("dp", args("hq-dp", "standard_dp", f"{HQ_NET}.10")),
        "hq-plain": ("dp", args("hq-plain", "standard_dp", f"{HQ_NET}.11")),
        # The default poll interval and retry delay (300 s, 30 s doubling): the branch DP
        # learns of assignments, and of sources coming to hold them, by a woken long-poll.
        "br-dp": ("branch", args("br-dp", "branch_dp", f"{BRANCH_NET}.10")),
    }  # fmt: skip
    agents: dict[str, AgentProcess] = {}
    try:
        with ThreadPoolExecutor(len(commands)) as pool:  # they boot at the same time
            booting = {key: pool.submit(start_agent, *command) for key, command in commands.items()}
            for key, future in booting.items():
                with contextlib.suppress(Exception):
                    agents[key] = future.result()
        assert set(agents) == set(commands), "a DP did not start: " + ", ".join(
            f"{key}: {future.exception()}" for key, future in booting.items() if future.exception()
        )
        body = {"role": "client", "max_uses": 1000}
        client_token = str(ok(admin.post("/enrolment-tokens", json=body), 201)["token"])
        yield Office(
            site,
            admin,
            tmp,
            branch_boundary,
            dps["hq-dp"],
            dps["hq-plain"],
            dps["br-dp"],
            agents["br-dp"],
            client_token,
        )
    finally:
        for agent in agents.values():
            agent.stop(signal.SIGTERM)
        admin.close()


# -- one deployment: a package advertised to the branch ---------------------------------------


@dataclass
class Client:
    name: str
    ip: str
    data_dir: Path
    out: Path  # where the program copies payload.txt


@dataclass
class Attempt:
    returncode: int
    outcome: dict[str, Any]
    stderr: str


@dataclass
class Deployment:
    office: Office
    tag: str
    files: dict[str, bytes]
    package: dict[str, Any]
    collection: dict[str, Any]
    advertisement: dict[str, Any]

    @property
    def admin(self) -> httpx.Client:
        return self.office.admin

    @property
    def package_id(self) -> str:
        return str(self.package["id"])

    def refresh(self) -> dict[str, Any]:
        self.package = ok(self.admin.get(f"/packages/{self.package_id}"))
        return self.package

    # -- clients ----------------------------------------------------------------------

    def client(self, net: str = BRANCH_NET) -> Client:
        host = next(self.office.hosts)
        name = f"{self.tag}-pc{host}"
        members = {"member_names": [name]}
        ok(self.admin.post(f"/collections/{self.collection['id']}/members", json=members))
        data_dir = self.office.tmp / name
        return Client(name, f"{net}.{host}", data_dir, self.office.tmp / f"{name}.out")

    def attempt(self, client: Client) -> Attempt:
        """One `peerdp client run --once --json`; its one outcome (one advertisement)."""
        args = [
            "client", "run", "--site", self.office.site.url, "--token", self.office.client_token,
            "--data-dir", str(client.data_dir), "--name", client.name,
            "--ip-address", client.ip, "--once", "--json",
        ]  # fmt: skip
        done = subprocess.run(
            peerdp_cmd(*args),
            env={**os.environ, "E2E_OUT": str(client.out)},
            capture_output=True,
            text=True,
            timeout=WAIT,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode in (0, 1), done.stdout + done.stderr
        outcomes = json.loads(done.stdout)
        assert len(outcomes) == 1, outcomes
        assert outcomes[0]["advertisement_id"] == self.advertisement["id"]
        return Attempt(done.returncode, outcomes[0], done.stderr)

    # -- what the site says -----------------------------------------------------------

    def dp_list(self) -> dict[int, dict[str, Any]]:
        rows = ok(self.admin.get(f"/packages/{self.package_id}/distribution-points"))
        return {row["dp_id"]: row for row in rows}

    def dp_states(self) -> dict[int, tuple[str, int, str]]:
        """dp_id -> (state, source version, origin)."""
        return {
            dp_id: (row["state"], row["source_version"], row["origin"])
            for dp_id, row in self.dp_list().items()
        }

    def requests(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = ok(
            self.admin.get("/on-demand-requests", params={"package_id": self.package_id})
        )
        return rows

    def messages(
        self, type_: str, state: str | None = None, **filters: Any
    ) -> list[dict[str, Any]]:
        """This package's status messages of a type (the API filters on all but `state`)."""
        params = {"package_id": self.package_id, "type": type_, **filters}
        rows: list[dict[str, Any]] = ok(self.admin.get("/status-messages", params=params))
        return [row for row in rows if state is None or row["state"] == state]

    def explain(self, client: Client) -> dict[str, Any]:
        params = {"client": client.name, "advertisement_id": self.advertisement["id"]}
        answer: dict[str, Any] = ok(self.admin.get("/explain", params=params))
        return answer

    def wait_row(self, dp_id: int, state: str, version: int | None = None) -> dict[str, Any]:
        version = version or int(self.package["source_version"])
        row: dict[str, Any] = wait_for(
            f"DP {dp_id} {state} at v{version} for {self.package_id}",
            lambda: (
                (r := self.dp_list().get(dp_id))
                and r["state"] == state
                and r["source_version"] == version
                and r
            ),
            WAIT,
        )
        return row

    # -- checks -------------------------------------------------------------------------

    def assert_failed(self, client: Client, attempt: Attempt, reason: str) -> None:
        """The attempt failed with this reason, reported in a content_location_failed."""
        assert attempt.returncode == 1, attempt
        assert attempt.outcome["result"] == "failed", attempt.outcome
        assert attempt.outcome["detail"].startswith(f"{reason}: "), attempt.outcome
        assert attempt.outcome["exit_code"] is None
        failed = self.messages("content_location_failed", client_name=client.name)
        assert failed, "no content_location_failed status message"
        assert failed[-1]["state"] == reason, failed[-1]
        assert failed[-1]["detail"].startswith(f"{reason}: "), failed[-1]
        assert failed[-1]["advertisement_id"] == self.advertisement["id"]
        assert not self.messages("program_started", client_name=client.name)
        assert not client.out.exists()

    def assert_succeeded(self, client: Client, attempt: Attempt, dp: dict[str, Any]) -> None:
        """The program ran (exit code 0) with the content from `dp` alone."""
        assert attempt.returncode == 0, attempt
        outcome = attempt.outcome
        assert outcome["result"] == "succeeded" and outcome["exit_code"] == 0, outcome
        assert outcome["source_version"] == self.package["source_version"], outcome
        sources = re.search(r"\(from ([^)]*)\)", outcome["detail"])
        assert sources, outcome["detail"]
        assert [part.rsplit(":", 1)[0] for part in sources[1].split(", ")] == [dp["name"]]
        assert client.out.read_bytes() == self.files["payload.txt"]
        succeeded = self.messages("program_succeeded", client_name=client.name)
        assert succeeded[-1]["exit_code"] == 0
        assert succeeded[-1]["source_version"] == self.package["source_version"]

    def assert_not_provisioned(self) -> None:
        """No on-demand request, no on-demand status message, no on-demand row."""
        assert self.requests() == []
        assert not self.messages("on_demand_triggered")
        assert not self.messages("on_demand_delayed")
        assert all(row["origin"] == "admin" for row in self.dp_list().values())


def deploy(
    office: Office,
    *,
    on_demand: bool = True,
    protected_only: bool = True,
    staged: bool = True,
    files: dict[str, bytes] | None = None,
) -> Deployment:
    """A package (payload.txt, which its program copies to $E2E_OUT), a collection and an
    advertisement to it; with `staged`, the package on the standard DP (admin-added)."""
    admin = office.admin
    tag = unique("d")
    files = {"payload.txt": f"payload of {tag}\n".encode(), **(files or {})}
    package = ok(admin.post("/packages", json={"name": f"{tag}-pkg", "on_demand": on_demand}), 201)
    version = ok(
        admin.post(
            f"/packages/{package['id']}/versions",
            content=tar_of(files),
            headers={"Content-Type": "application/x-tar"},
        ),
        201,
    )
    package["source_version"] = version["source_version"]
    program = {"name": "install", "command_line": 'cp payload.txt "$E2E_OUT"', "timeout_s": 60}
    ok(admin.post(f"/packages/{package['id']}/programs", json=program), 201)
    collection = ok(admin.post("/collections", json={"name": f"{tag}-col"}), 201)
    advertisement = ok(
        admin.post(
            "/advertisements",
            json={
                "name": f"{tag}-adv",
                "package_id": package["id"],
                "program_name": "install",
                "collection_id": collection["id"],
                "protected_only": protected_only,
            },
        ),
        201,
    )
    deployment = Deployment(office, tag, files, package, collection, advertisement)
    if staged:
        stage(deployment)
    return deployment


def stage(d: Deployment, dp: dict[str, Any] | None = None) -> None:
    """Put the package on a standard DP (by default the BITS-enabled one); the
    distribution manager pushes it there."""
    dp_id = (dp or d.office.standard_dp)["id"]
    ok(d.admin.post(f"/packages/{d.package_id}/distribution-points", json={"dp_id": dp_id}), 201)
    d.wait_row(dp_id, "installed")


# -- the seed flow -------------------------------------------------------------------------------


def test_seed_flow(office: Office) -> None:
    """First attempt fails and adds the branch DP on demand; it pulls; the retry and every
    later client of the branch get the content from the branch DP."""
    d = deploy(office)
    std, br = office.standard_dp, office.branch_dp
    assert d.dp_states() == {std["id"]: ("installed", 1, "admin")}
    pc1 = d.client()

    first = d.attempt(pc1)
    d.assert_failed(pc1, first, "on_demand_triggered")
    waiting = ok(d.admin.get(f"/advertisements/{d.advertisement['id']}/status"))["clients"]
    assert [(r["state"], r["reason"]) for r in waiting] == [
        ("waiting_for_content", "on_demand_triggered")
    ]
    rows = d.dp_states()
    assert rows[std["id"]] == ("installed", 1, "admin")
    assert rows[br["id"]][1:] == (1, "on_demand")
    assert rows[br["id"]][0] in ("install_pending", "installed")
    [request] = d.requests()
    assert (request["dp_id"], request["client_name"], request["state"]) == (
        br["id"],
        pc1.name,
        "provisioned",
    )
    assert request["source_version"] == 1 and request["provisioned_at"]
    [triggered] = d.messages("on_demand_triggered")
    assert (triggered["dp_id"], triggered["client_name"]) == (br["id"], pc1.name)
    assert not d.messages("on_demand_delayed")

    row = d.wait_row(br["id"], "installed")
    assert row["origin"] == "on_demand"
    [installed] = d.messages("package_state", dp_id=br["id"], state="installed")
    total = sum(len(data) for data in d.files.values())
    assert f"{total} bytes over the network (from {std['name']}: {total})" in installed["detail"]

    second = d.attempt(pc1)
    d.assert_succeeded(pc1, second, br)

    # Another client of the branch gets it at once, from the branch DP, adding nothing.
    pc2 = d.client()
    d.assert_succeeded(pc2, d.attempt(pc2), br)
    assert not d.messages("content_location_failed", client_name=pc2.name)
    assert len(d.requests()) == 1 and len(d.messages("on_demand_triggered")) == 1
    assert d.dp_states() == {
        std["id"]: ("installed", 1, "admin"),
        br["id"]: ("installed", 1, "on_demand"),
    }
    assert_status_of_the_seed(d, [pc1, pc2], total)


def assert_status_of_the_seed(d: Deployment, clients: list[Client], total: int) -> None:
    """The deployment and package status summaries tell the seed's flow as the agents
    reported it: every client succeeded once, from the branch DP, which pulled the content
    once over the WAN and served it to each client."""
    std, br = d.office.standard_dp, d.office.branch_dp
    status = ok(d.admin.get(f"/advertisements/{d.advertisement['id']}/status"))
    assert {k: v for k, v in status["counts"].items() if v} == {"succeeded": len(clients)}
    rows = {row["client_name"]: row for row in status["clients"]}
    assert set(rows) == {c.name for c in clients}
    for row in rows.values():
        assert (row["exit_code"], row["source_dp_name"]) == (0, br["name"]), row
    [boundary] = status["boundaries"]
    assert boundary["boundary_id"] is not None and boundary["total"] == len(clients)
    package = ok(d.admin.get(f"/packages/{d.package_id}/status"))
    assert (package["installed"], package["dps_total"]) == (2, 2)
    dps = {row["dp_id"]: row for row in package["distribution_points"]}
    assert (dps[br["id"]]["pulled_bytes"], dps[br["id"]]["served_bytes"]) == (
        total,
        total * len(clients),
    )
    assert dps[std["id"]]["served_bytes"] == total, "the branch DP's pull"
    assert [r["dp_id"] for r in package["on_demand"]] == [br["id"]]


# -- each condition failing on its own ---------------------------------------------------------


def test_no_protected_branch_dp_covers_the_client(office: Office) -> None:
    """Condition (b): a branch whose branch DP is not protected (and whose only protected
    DP is a standard one) gets no on-demand provisioning; protect the branch DP and it does.
    """
    d = deploy(office)
    n = next(_EXTRA_NETS)
    net = f"10.{71 + n // 250 % 150}.{n % 250}"
    boundary = _boundary(d.admin, f"{d.tag}-BRANCH2", net)
    branch2 = _dp(d.admin, name=f"{d.tag}-BR2-DP", kind="branch", ip_addresses=[f"{net}.10"])
    protected_standard = _dp(
        d.admin,
        name=f"{d.tag}-BR2-STD",
        kind="standard",
        bits_enabled=True,
        protected_boundary_ids=[boundary["id"]],
        ip_addresses=[f"{net}.11"],
        url="http://127.0.0.1:9",
    )
    pc = d.client(net)

    d.assert_failed(pc, d.attempt(pc), "no_content_accessible")
    d.assert_failed(pc, d.attempt(pc), "no_content_accessible")  # and again: nothing changes
    d.assert_not_provisioned()
    assert d.dp_states() == {office.standard_dp["id"]: ("installed", 1, "admin")}
    why = d.explain(pc)
    assert why["reason"] == "no_content_accessible" and not why["on_demand_fires"]
    assert why["on_demand_failed_conditions"] == [
        "(b) no protected branch DP includes the client's boundaries"
    ]

    # The one missing condition made true: the branch DP (and not the standard DP) is added.
    ok(d.admin.patch(f"/distribution-points/{branch2['id']}",
                     json={"protected_boundary_ids": [boundary["id"]]}))  # fmt: skip
    d.assert_failed(pc, d.attempt(pc), "on_demand_triggered")
    rows = d.dp_states()
    assert rows[branch2["id"]] == ("install_pending", 1, "on_demand")
    assert protected_standard["id"] not in rows
    assert [(r["dp_id"], r["state"]) for r in d.requests()] == [(branch2["id"], "provisioned")]


def test_advertisement_not_protected_only(office: Office) -> None:
    """Condition (c): without protected_only the client may use unprotected DPs, so no
    branch DP is added; it gets the standard DP when the advertisement allows a remote,
    slow one. With protected_only, on-demand provisioning fires."""
    d = deploy(office, protected_only=False)
    adv = f"/advertisements/{d.advertisement['id']}"
    pc1 = d.client()

    d.assert_failed(pc1, d.attempt(pc1), "no_content_accessible")  # remote DPs not allowed
    why = d.explain(pc1)
    assert why["on_demand_failed_conditions"] == ["(c) the advertisement is not protected_only"]
    ok(d.admin.patch(adv, json={"allow_remote": True}))
    d.assert_failed(pc1, d.attempt(pc1), "slow_boundary_do_not_run")  # remote is slow
    d.assert_not_provisioned()

    ok(d.admin.patch(adv, json={"on_slow": "download"}))
    d.assert_succeeded(pc1, d.attempt(pc1), office.standard_dp)  # over the WAN
    d.assert_not_provisioned()
    assert d.dp_states() == {office.standard_dp["id"]: ("installed", 1, "admin")}

    # protected_only: the client, inside the branch DP's protected boundary, may use only
    # protected DPs, none holds the package, and on-demand provisioning fires.
    ok(d.admin.patch(adv, json={"protected_only": True}))
    pc2 = d.client()
    d.assert_failed(pc2, d.attempt(pc2), "on_demand_triggered")
    assert d.dp_states()[office.branch_dp["id"]][1:] == (1, "on_demand")
    d.wait_row(office.branch_dp["id"], "installed")
    d.assert_succeeded(pc2, d.attempt(pc2), office.branch_dp)


def test_package_does_not_allow_on_demand(office: Office) -> None:
    """Condition (d): a package without on-demand distribution is never sent to the branch
    DP by a client's request; allow it and the next attempt provisions the branch DP."""
    d = deploy(office, on_demand=False)
    pc = d.client()

    d.assert_failed(pc, d.attempt(pc), "no_content_accessible")
    d.assert_not_provisioned()
    assert d.dp_states() == {office.standard_dp["id"]: ("installed", 1, "admin")}
    why = d.explain(pc)
    assert why["on_demand_failed_conditions"] == [
        "(d) the package does not allow on-demand distribution"
    ]

    ok(d.admin.patch(f"/packages/{d.package_id}", json={"on_demand": True}))
    d.assert_failed(pc, d.attempt(pc), "on_demand_triggered")
    assert [(r["dp_id"], r["client_name"]) for r in d.requests()] == [
        (office.branch_dp["id"], pc.name)
    ]
    row = d.wait_row(office.branch_dp["id"], "installed")
    assert row["origin"] == "on_demand"
    d.assert_succeeded(pc, d.attempt(pc), office.branch_dp)


def test_no_bits_standard_dp_holds_the_content_yet(office: Office) -> None:
    """Condition (a)'s note: with the content on no BITS-enabled standard DP of the branch
    DP's site (here: only on one that is not BITS-enabled), the request is delayed; it is
    carried out, with no further client request, as soon as a BITS-enabled one holds it."""
    d = deploy(office, staged=False)
    std, plain, br = office.standard_dp, office.plain_dp, office.branch_dp
    stage(d, plain)
    pc1, pc2 = d.client(), d.client()

    d.assert_failed(pc1, d.attempt(pc1), "on_demand_delayed")
    d.assert_failed(pc2, d.attempt(pc2), "on_demand_delayed")
    assert d.dp_states() == {plain["id"]: ("installed", 1, "admin")}
    [request] = d.requests()  # one per branch DP and version, however many clients ask
    assert (request["dp_id"], request["client_name"], request["state"]) == (
        br["id"],
        pc1.name,
        "delayed",
    )
    assert request["provisioned_at"] is None
    [delayed] = d.messages("on_demand_delayed")
    assert (delayed["dp_id"], delayed["client_name"]) == (br["id"], pc1.name)
    assert not d.messages("on_demand_triggered")
    assert d.explain(pc1)["on_demand"] == [{"dp_id": br["id"], "action": "delayed"}]

    # The content reaches the standard DP; no client asks again.
    # Wait for the condition (both logged), not for the first message: the status log
    # writes them in batches, so the first non-empty answer may hold one of the two.
    asked = wait_for(
        "both location requests logged",
        lambda: len(logged := d.messages("content_location")) == 2 and logged,
        WAIT,
    )
    stage(d)
    row = d.wait_row(br["id"], "installed")
    assert row["origin"] == "on_demand"
    [request] = d.requests()
    assert request["state"] == "provisioned" and request["provisioned_at"]
    [triggered] = d.messages("on_demand_triggered")
    assert (triggered["dp_id"], triggered["client_name"]) == (br["id"], pc1.name)
    assert len(d.messages("content_location")) == len(asked) == 2
    assert d.dp_states() == {
        plain["id"]: ("installed", 1, "admin"),
        std["id"]: ("installed", 1, "admin"),
        br["id"]: ("installed", 1, "on_demand"),
    }
    [installed] = d.messages("package_state", dp_id=br["id"], state="installed")
    assert f"(from {std['name']}: " in installed["detail"]  # from the BITS-enabled one
    d.assert_succeeded(pc1, d.attempt(pc1), br)
    d.assert_succeeded(pc2, d.attempt(pc2), br)


def test_delayed_request_goes_ahead_when_its_standard_dp_turns_bits_enabled(
    office: Office,
) -> None:
    """The other way a BITS-enabled standard DP comes to hold the content: the one
    holding it is made BITS-enabled. The delayed request is carried out at once."""
    d = deploy(office, staged=False)
    plain, br = office.plain_dp, office.branch_dp
    stage(d, plain)
    pc = d.client()
    d.assert_failed(pc, d.attempt(pc), "on_demand_delayed")
    assert [r["state"] for r in d.requests()] == ["delayed"]

    dp = f"/distribution-points/{plain['id']}"
    try:
        ok(d.admin.patch(dp, json={"bits_enabled": True}))
        row = d.wait_row(br["id"], "installed")
    finally:
        ok(d.admin.patch(dp, json={"bits_enabled": False}))
    assert row["origin"] == "on_demand"
    assert [r["state"] for r in d.requests()] == ["provisioned"]
    [installed] = d.messages("package_state", dp_id=br["id"], state="installed")
    assert f"(from {plain['name']}: " in installed["detail"]
    d.assert_succeeded(pc, d.attempt(pc), br)


# -- a package update while the branch DP holds the old version ------------------------------


def installed_at(d: Deployment, dp: dict[str, Any], version: int) -> datetime:
    """When the DP reported (or the site recorded) version `version` installed on it."""
    [message] = [
        m
        for m in d.messages("package_state", dp_id=dp["id"], state="installed")
        if m["source_version"] == version
    ]
    return datetime.fromisoformat(message["at"])


def test_update_pulls_only_the_changed_file(office: Office, tmp_path: Path) -> None:
    big = {f"lib/part{i}.bin": random.randbytes(150_000) for i in range(3)}
    d = deploy(office, files=big)
    br = office.branch_dp
    pc = d.client()
    d.assert_failed(pc, d.attempt(pc), "on_demand_triggered")
    d.wait_row(br["id"], "installed")
    d.assert_succeeded(pc, d.attempt(pc), br)
    pulled_before = metric(office.branch.url, "peerdp_branch_pulled_bytes_total")

    # Source version 2: payload.txt changed, the three large parts the same.
    changed = f"payload of {d.tag}, version 2\n".encode() * 1000
    folder = tmp_path / "v2"
    for path, data in {**d.files, "payload.txt": changed}.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    env = {**os.environ, "PEERDP_SITE_URL": office.site.url,
           "PEERDP_ADMIN_TOKEN": office.site.admin_token}  # fmt: skip
    done = subprocess.run(
        peerdp_cmd("package", "update", d.package_id, str(folder), "--json"),
        env=env, capture_output=True, text=True, timeout=WAIT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["source_version"] == 2
    d.files["payload.txt"] = changed
    assert d.refresh()["source_version"] == 2

    row = d.wait_row(br["id"], "installed", version=2)
    assert row["origin"] == "on_demand"  # still the on-demand row, now at version 2
    # The branch DP pulls as soon as the standard DP holds version 2 (its policy names the
    # new source), not when its retry delay (30 s at the default settings) runs out.
    held_at = installed_at(d, office.standard_dp, 2)
    delay = (installed_at(d, br, 2) - held_at).total_seconds()
    print(f"branch DP installed v2 {delay:.2f} s after the standard DP held it")
    assert delay < 15, f"the branch DP waited {delay:.1f} s for a source it had been given"
    waited = d.messages("package_state", dp_id=br["id"], state="install_retrying")
    waited = [m for m in waited if m["source_version"] == 2]
    assert all(m["detail"].startswith("waiting: ") for m in waited), waited  # no failure
    installed = d.messages("package_state", dp_id=br["id"], state="installed")
    installed = [m for m in installed if m["source_version"] == 2]
    assert len(installed) == 1, [(m["at"], m["source"], m["detail"]) for m in installed]
    total = len(changed) + sum(len(data) for data in big.values())
    assert (
        f"{len(changed)} bytes over the network (from {office.standard_dp['name']}: "
        f"{len(changed)}), {total - len(changed)} held already" in installed[0]["detail"]
    ), installed[0]["detail"]
    pulled = metric(office.branch.url, "peerdp_branch_pulled_bytes_total") - pulled_before
    assert pulled == len(changed), (pulled, len(changed), total)
    assert d.dp_states() == {
        office.standard_dp["id"]: ("installed", 2, "admin"),
        br["id"]: ("installed", 2, "on_demand"),
    }
    assert len(d.requests()) == 1  # the update needed no new on-demand request
    manifests = office.tmp / "br-dp" / "store" / "manifests" / d.package_id
    assert sorted(p.name for p in manifests.iterdir()) == ["2.json"]  # version 1 deleted

    # The client that ran version 1 runs version 2, from the branch DP.
    d.assert_succeeded(pc, d.attempt(pc), br)
    assert pc.out.read_bytes() == changed
