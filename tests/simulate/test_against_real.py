"""The seed's scenario simulated, and the same site run with real processes: the same story.

The real site is built from the simulator's own world (`world.build`): the same
boundaries, DPs (names, kinds, BITS, protection, addresses), package (size, files),
advertisement and clients (names, addresses); the clients are `peerdp client run`
services with the scenario's retry interval. Both runs are then told as a `Story`: the
location decisions in order (the simulator's trace; the MP's `content_location` status
messages, which carry the same words), the on-demand provisionings, the branch DP's pulls
and where they stood among the decisions, the bytes each DP served and pulled (the WAN
bytes), and the DP each client succeeded from. Timings legitimately differ (loopback is
faster than the scenario's 10 Mbit/s link), so only order and counts are compared.

One difference is arranged rather than left to chance: the simulated pull over the WAN
link takes seconds, so the four first attempts all come before it ends; on loopback it
would race the clients' start-up. The real branch DP is therefore started once the four
first attempts have failed: it learns of its assignment as it starts, as the simulated
one does by its long-poll.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from peerdp.simulate import world as w
from peerdp.simulate.engine import Engine
from peerdp.simulate.results import decisions, summarise
from tests.helpers.api import ok, tar_of, wait_for
from tests.helpers.processes import SiteProcess, peerdp_cmd, stop_process
from tests.helpers.sites import module_site
from tests.machine.support import AgentProcess, start_agent
from tests.simulate.support import run, seed

pytestmark = pytest.mark.slow  # a site, two DPs and four clients as real processes

# The seed's scenario, its package small enough for loopback, and a retry interval short
# enough for a test yet longer than the branch DP needs to start and pull.
RETRY_S = 20.0
SCENARIO = seed(
    packages__size_mib=3,
    clients={"retry_interval_s": RETRY_S, "program_run_s": 1.0},
)
WAIT = 60.0


@dataclass(frozen=True)
class Story:
    """A deployment as the comparison sees it: order and counts, no timings."""

    decisions: list[tuple[str, str]]  # (client, answer): every location answer, in order
    provisionings: list[tuple[str, str]]  # (branch DP, the client whose request fired it)
    pulls: list[tuple[str, str]]  # (branch DP, the DP it pulled from)
    answers_before_pull: int
    wan_bytes: int  # what the branch DP pulled over its branch's WAN link
    served_bytes: dict[str, int]  # by DP: to clients and to the pulling branch DP
    succeeded_from: dict[str, str]  # client -> the DP its content came from
    rounds: list[int] = field(default_factory=list)  # filled in by `by_arrival`

    def by_arrival(self) -> Story:
        """The same story with each client named by when it first asked ("asker 1" ...),
        and each round of attempts after the first in name order: which machine reaches
        the MP first is timing, on a real site as in a simulation. The first round keeps
        its order (who came first decides the answers); `rounds` keeps, for each answer
        in turn, which of its client's attempts it answered, so the rounds' interleaving
        is still compared."""
        rank: dict[str, str] = {}
        for client, _ in self.decisions:
            rank.setdefault(client, f"asker {len(rank) + 1}")
        rounds = _round_of_each(self.decisions)
        named = [(rank[c], answer) for c, answer in self.decisions]
        first = [d for d, r in zip(named, rounds, strict=True) if r == 1]
        later = sorted((r, d) for d, r in zip(named, rounds, strict=True) if r > 1)
        return replace(
            self,
            decisions=first + [d for _, d in later],
            rounds=rounds,
            provisionings=[(dp, rank[c]) for dp, c in self.provisionings],
            succeeded_from={rank[c]: dp for c, dp in sorted(self.succeeded_from.items())},
        )


def _round_of_each(decisions: list[tuple[str, str]]) -> list[int]:
    """For each decision in turn, which attempt of its client's it answered (1, 2, ...)."""
    tries: Counter[str] = Counter()
    found = []
    for client, _ in decisions:
        tries[client] += 1
        found.append(tries[client])
    return found


def test_the_simulator_tells_the_seed_as_the_real_site_does(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    engine = run(SCENARIO)
    simulated = simulated_story(engine)
    # The seed's story, so that agreeing on something else cannot pass.
    told = simulated.by_arrival()
    assert told.rounds == [1, 1, 1, 1, 2, 2, 2, 2]  # every first attempt, then the retries
    first, retries = told.decisions[:4], told.decisions[4:]
    assert first == [
        ("asker 1", "answered with no DP: on_demand_triggered"),
        *[(f"asker {n}", "answered with no DP: on_demand_in_progress") for n in (2, 3, 4)],
    ]
    assert retries == [(f"asker {n}", "answered with 1 DP(s): BR01-DP") for n in range(1, 5)]
    assert simulated.answers_before_pull == 4

    with module_site("sqlite", tmp_path_factory) as site:
        real = real_story(site, engine, tmp_path)
    assert real.by_arrival() == simulated.by_arrival()


# -- the simulator's story ---------------------------------------------------------------


def simulated_story(engine: Engine) -> Story:
    trace = engine.trace or []
    made = decisions(engine)
    fired_by = [
        (step.who, _last_asker(trace[:n]))
        for n, step in enumerate(trace)
        if step.what == "on_demand_added"
    ]
    pulls = [(s.who, s.detail) for s in trace if s.what == "pull_started"]
    [pulled_at] = [n for n, s in enumerate(trace) if s.what == "pulled"]
    served: Counter[str] = Counter()
    for job in engine.jobs:
        served.update({dp: round(b) for dp, b in job.received.items()})
    pulled = {n.dp.rule.name: round(n.pulled_bytes) for n in engine.dps.values() if n.pulled_bytes}
    for dp, source in pulls:
        served[source] += pulled[dp]
    summary = summarise(engine).summary
    [wan_bytes] = summary["wan_bytes_by_link"].values()
    return Story(
        decisions=[(d.client, d.answer) for d in made],
        provisionings=fired_by,
        pulls=pulls,
        answers_before_pull=sum(1 for s in trace[:pulled_at] if s.what == "located"),
        wan_bytes=wan_bytes,
        served_bytes=dict(served),
        succeeded_from={
            j.client.name: ", ".join(sorted(j.received))
            for j in engine.jobs
            if j.done_at is not None
        },
    )


def _last_asker(steps: list[Any]) -> str:
    return str(next(s.who for s in reversed(steps) if s.what == "located"))


# -- the real site's story -----------------------------------------------------------------


def real_story(site: SiteProcess, engine: Engine, tmp: Path) -> Story:
    """The engine's world on a real site, its clients (named and placed as the engine's)
    as `peerdp client run` services; the story the site's records tell."""
    world, admin = engine.world, site.admin()
    stack = contextlib.ExitStack()
    with admin, stack:
        dps = build_site(admin, world)
        token = _tokens(admin, dps)
        [standard] = [dp for dp in world.dps if dp.rule.kind == "standard"]
        [branch] = [dp for dp in world.dps if dp.rule.kind == "branch"]
        agent = start_dp(site, standard, token, tmp)
        stack.callback(agent.stop)
        clients = [(job.client.name, job.client.ip_addresses[0]) for job in engine.jobs]
        package_id, adv_id = deploy(admin, world, [n for n, _ in clients], dps[standard.rule.name])

        client_token = str(ok(admin.post("/enrolment-tokens", json={
            "role": "client", "max_uses": len(clients)}), 201)["token"])  # fmt: skip
        for name, ip in clients:
            process = start_client(site, client_token, name, ip, tmp)
            stack.callback(stop_process, process)
        messages = Messages(admin, package_id)
        failed = messages.counter("content_location_failed")
        wait_for("every client's first attempt failed", lambda: failed() == len(clients), WAIT)

        agent = start_dp(site, branch, token, tmp)
        stack.callback(agent.stop)
        status = f"/advertisements/{adv_id}/status"

        def all_succeeded() -> bool:
            return bool(ok(admin.get(status))["counts"].get("succeeded") == len(clients))

        wait_for("every client succeeded", all_succeeded, WAIT + RETRY_S)
        return told(admin, messages, package_id, adv_id, branch.rule.name)


def told(
    admin: httpx.Client, messages: Messages, package_id: str, adv_id: int, branch: str
) -> Story:
    located = messages("content_location")
    [request] = ok(admin.get("/on-demand-requests", params={"package_id": package_id}))
    package = ok(admin.get(f"/packages/{package_id}/status"))
    names = {row["dp_id"]: row["dp_name"] for row in package["distribution_points"]}
    installs = [
        m for m in messages("package_state", state="installed") if names[m["dp_id"]] == branch
    ]
    pulls = [(names[m["dp_id"]], _pulled_from(m["detail"])) for m in installs]
    [pulled_at] = [datetime.fromisoformat(m["at"]) for m in installs]
    by_dp = {names[row["dp_id"]]: row for row in package["distribution_points"]}
    status = ok(admin.get(f"/advertisements/{adv_id}/status"))
    return Story(
        decisions=[(m["client_name"], m["detail"]) for m in located],
        provisionings=[(names[request["dp_id"]], request["client_name"])],
        pulls=pulls,
        answers_before_pull=sum(1 for m in located if datetime.fromisoformat(m["at"]) < pulled_at),
        wan_bytes=by_dp[branch]["pulled_bytes"],
        served_bytes={name: row["served_bytes"] for name, row in by_dp.items()},
        succeeded_from={r["client_name"]: r["source_dp_name"] for r in status["clients"]},
    )


def _pulled_from(detail: str) -> str:
    """The source named in a branch DP's `installed` message: "... (from HQ-DP01: N)"."""
    return detail.split("(from ", 1)[1].split(":", 1)[0]


class Messages:
    """The package's status messages of one type, in the order the site recorded them."""

    def __init__(self, admin: httpx.Client, package_id: str) -> None:
        self.admin, self.package_id = admin, package_id

    def __call__(self, type_: str, state: str | None = None) -> list[dict[str, Any]]:
        params = {"package_id": self.package_id, "type": type_}
        rows: list[dict[str, Any]] = ok(self.admin.get("/status-messages", params=params))
        return [row for row in rows if state is None or row["state"] == state]

    def counter(self, type_: str) -> Callable[[], int]:
        return lambda: len(self(type_))


def build_site(admin: httpx.Client, world: w.World) -> dict[str, dict[str, Any]]:
    """The world's boundaries and DPs on the real site; its DPs by name."""
    boundary_ids = {}
    for b in world.boundaries:
        body = {"name": b.name, "type": b.type, "value": b.value, "connection": b.connection}
        boundary_ids[b.id] = ok(admin.post("/boundaries", json=body), 201)["id"]
    dps = {}
    for dp in world.dps:
        fields: dict[str, Any] = {
            "name": dp.rule.name,
            "kind": dp.rule.kind,
            "bits_enabled": dp.rule.bits_enabled,
            "protected_boundary_ids": [boundary_ids[i] for i in dp.rule.protected_boundary_ids],
            "ip_addresses": list(dp.rule.ip_addresses),
        }
        dps[dp.rule.name] = ok(admin.post("/distribution-points", json=fields), 201)
    return dps


def _tokens(admin: httpx.Client, dps: dict[str, dict[str, Any]]) -> dict[str, str]:
    """An enrolment token for each DP, by name."""
    tokens = {}
    for name, dp in dps.items():
        body = {"role": f"{dp['kind']}_dp", "dp_id": dp["id"], "max_uses": 1}
        tokens[name] = str(ok(admin.post("/enrolment-tokens", json=body), 201)["token"])
    return tokens


def start_dp(site: SiteProcess, dp: w.DP, tokens: dict[str, str], tmp: Path) -> AgentProcess:
    name = dp.rule.name
    command = "dp" if dp.rule.kind == "standard" else "branch"
    return start_agent(command, [
        "--site", site.url, "--token", tokens[name], "--data-dir", str(tmp / name),
        "--name", name, "--ip-address", dp.rule.ip_addresses[0],
    ])  # fmt: skip


def deploy(
    admin: httpx.Client, world: w.World, clients: list[str], standard: dict[str, Any]
) -> tuple[str, int]:
    """The world's one package (its size in its number of files) staged on the standard
    DP, and its one advertisement to a collection of the world's clients."""
    [package] = world.packages
    [adv] = world.advertisements
    share, rest = divmod(package.size, package.files)
    files = {f"part{n}.bin": os.urandom(share + (rest if n == 1 else 0))
             for n in range(1, package.files + 1)}  # fmt: skip
    body = {"name": package.name, "on_demand": package.on_demand}
    package_id = str(ok(admin.post("/packages", json=body), 201)["id"])
    ok(admin.post(f"/packages/{package_id}/versions", content=tar_of(files),
                  headers={"Content-Type": "application/x-tar"}), 201)  # fmt: skip
    program = {"name": "install", "command_line": "test -s part1.bin", "timeout_s": 60}
    ok(admin.post(f"/packages/{package_id}/programs", json=program), 201)
    collection = ok(admin.post("/collections", json={"name": "the branch"}), 201)
    members = {"member_names": clients}
    ok(admin.post(f"/collections/{collection['id']}/members", json=members))
    standard_id = standard["id"]
    ok(admin.post(f"/packages/{package_id}/distribution-points", json={"dp_id": standard_id}), 201)
    wait_for("the package installed on the standard DP", lambda: any(
        row["dp_id"] == standard_id and row["state"] == "installed"
        for row in ok(admin.get(f"/packages/{package_id}/distribution-points"))
    ), WAIT)  # fmt: skip
    body = {
        "name": adv.rule.id,
        "package_id": package_id,
        "program_name": "install",
        "collection_id": collection["id"],
        "protected_only": adv.rule.protected_only,
        "on_slow": adv.rule.on_slow,
        "allow_remote": adv.rule.allow_remote,
    }
    return package_id, int(ok(admin.post("/advertisements", json=body), 201)["id"])


def start_client(
    site: SiteProcess, token: str, name: str, ip: str, tmp: Path
) -> subprocess.Popen[bytes]:
    """`peerdp client run` as a service, with the scenario's retry interval."""
    behaviour = SCENARIO["clients"]
    args = [
        "client", "run", "--site", site.url, "--token", token, "--data-dir", str(tmp / name),
        "--name", name, "--ip-address", ip, "--retry-interval", str(behaviour["retry_interval_s"]),
    ]  # fmt: skip
    with (tmp / f"{name}.log").open("wb") as log:  # the child keeps its own copy
        return subprocess.Popen(peerdp_cmd(*args), stdout=log, stderr=log, stdin=subprocess.DEVNULL)
