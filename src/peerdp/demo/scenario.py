"""The seed's scenario with real processes, narrated from the real status messages.

A site server (embedded SQLite), a BITS-enabled standard DP at the head office, a
protected branch DP for the branch subnet and several clients in that subnet, all on
loopback; each agent is told which network it sits in with --ip-address.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from peerdp.admin_client import AdminClient, checked_folder, send_folder
from peerdp.demo.fleet import Fleet, Service
from peerdp.demo.narrator import Narrator
from peerdp.demo.readings import bytes_by_source, bytes_under, first_outcome, metric
from peerdp.demo.signals import EndingSignals, Stopped
from peerdp.domain.timestamps import parse_rfc3339

HQ_NET, BRANCH_NET = "10.0.0", "10.1.1"
PACKAGE_MIB = 24


@dataclass
class Options:
    clients: int = 4
    delayed: bool = False
    delay_s: float = 6.0
    data_dir: Path | None = None
    branch_bandwidth: int = 8 * 1024 * 1024


@dataclass
class Demo:
    """The scenario's steps, on the admin API and the fleet of processes; `narrator`
    tells them."""

    options: Options
    narrator: Narrator
    root: Path
    fleet: Fleet
    api: AdminClient | None = None
    ids: dict[str, Any] = field(default_factory=dict)
    seen_message: int = 0
    started: float = field(default_factory=time.monotonic)

    def step(self, text: str) -> None:
        self.narrator.step(text)

    def say(self, text: str) -> None:
        self.narrator.say(text)

    def narrate(self) -> None:
        """Tell the status messages written since the last call (what really happened)."""
        assert self.api is not None
        rows = self.api.get("/status-messages", params={"after_id": self.seen_message})
        for row in rows:
            self.seen_message = max(self.seen_message, row["id"])
        self.narrator.status_messages(rows)

    def run(self) -> int:
        site = self.start_site()
        booting = self.set_up_network(site)
        self.set_up_package()
        branch = self.await_dps(booting)
        if not self.options.delayed:
            self.stage_on_standard_dp()
        first = self.run_clients(site, "first attempt")
        self.show_on_demand()
        if self.options.delayed:
            self.step(
                "Condition 1: the content reaches the standard DP only now "
                f"({self.options.delay_s:.0f}s later)"
            )
            time.sleep(self.options.delay_s)
            self.stage_on_standard_dp()
            self.show_on_demand()
        self.wait_for_branch()
        pending = [name for name, o in first.items() if o.get("exit_code") != 0]
        second = self.run_clients(site, "retry", pending)
        self.summary(first, second, branch)
        return 0 if all(o.get("exit_code") == 0 for o in {**first, **second}.values()) else 1

    def start_site(self) -> Service:
        self.step("Starting the site server (embedded SQLite)")
        data_dir = self.root / "site"
        # The embedded database, whatever PEERDP_DB this shell has set.
        db = f"sqlite:///{data_dir.resolve() / 'site.db'}"
        site = self.fleet.start(
            "site", ["site", "serve", "--data-dir", str(data_dir), "--db", db, "--port", "0"]
        )
        self.api = AdminClient(site.url, self.fleet.env["PEERDP_ADMIN_TOKEN"])
        self.say(f"site PS1 at {site.url}  (admin API {site.url}/api/v1, docs {site.url}/docs)")
        return site

    def set_up_network(self, site: Service) -> list[Callable[[float], Service]]:
        api = self.api
        assert api is not None
        self.step("Setting up boundaries and DPs; starting the DP processes")
        hq = api.post(
            "/boundaries",
            {
                "name": "HEAD-OFFICE",
                "type": "ip_subnet",
                "value": f"{HQ_NET}.0/24",
                "connection": "fast",
            },
        )
        br = api.post(
            "/boundaries",
            {
                "name": "BRANCH-01",
                "type": "ip_subnet",
                "value": f"{BRANCH_NET}.0/24",
                "connection": "fast",
            },
        )
        self.say(f"boundaries: HEAD-OFFICE {hq['value']}, BRANCH-01 {br['value']}")
        std = api.post(
            "/distribution-points",
            {
                "name": "HQ-DP01",
                "kind": "standard",
                "bits_enabled": True,
                "ip_addresses": [f"{HQ_NET}.10"],
            },
        )
        branch = api.post(
            "/distribution-points",
            {
                "name": "BR01-DP",
                "kind": "branch",
                "bits_enabled": True,
                "protected_boundary_ids": [br["id"]],
                "ip_addresses": [f"{BRANCH_NET}.10"],
            },
        )
        self.ids.update(std=std["id"], branch=branch["id"])
        self.say("DPs: HQ-DP01 (standard, BITS) and BR01-DP (branch, protects BRANCH-01)")
        return self.spawn_dps(site)

    def set_up_package(self) -> None:
        api = self.api
        assert api is not None
        self.step("Creating a package, a program, a collection and a protected-only advertisement")
        package = api.post("/packages", {"name": "Demo App 1.0", "on_demand": True})
        folder = self.make_content()
        version = send_folder(api, f"/packages/{package['id']}/versions", checked_folder(folder))
        self.ids["package"], self.ids["version"] = package["id"], version["source_version"]
        self.ids["size"] = version["total_size"]
        self.say(
            f"package {package['id']} 'Demo App 1.0' v{version['source_version']}: "
            f"{version['file_count']} files, {version['total_size'] / 2**20:.0f} MiB, "
            "on-demand distribution allowed"
        )
        api.post(
            f"/packages/{package['id']}/programs",
            {"name": "install", "command_line": "sh install.sh", "timeout_s": 60},
        )
        names = [f"PC-{i:02d}" for i in range(1, self.options.clients + 1)]
        collection = api.post(
            "/collections", {"name": "Branch 01 workstations", "member_names": names}
        )
        adv = api.post(
            "/advertisements",
            {
                "name": "Install Demo App",
                "package_id": package["id"],
                "program_name": "install",
                "collection_id": collection["id"],
                "protected_only": True,
            },
        )
        self.ids["adv"], self.ids["clients"] = adv["id"], names
        self.ids["client_token"] = self.token("client", uses=len(names))
        self.say(
            f"advertisement {adv['id']} → {len(names)} client{'s' * (len(names) != 1)}, "
            "protected_only: "
            '"allow the client to access the content only from the protected DPs"'
        )

    def make_content(self) -> Path:
        folder = self.root / "source" / "demo-app"
        folder.mkdir(parents=True)
        (folder / "install.sh").write_text(
            '#!/bin/sh\necho "Demo App installed on $(hostname) from $(pwd)"\n'
            "cat payload/readme.txt > installed.txt\n"
        )
        (folder / "payload").mkdir()
        (folder / "payload" / "readme.txt").write_text("Demo App 1.0\n")
        chunk = PACKAGE_MIB // 3
        for index in range(3):
            (folder / "payload" / f"data{index}.bin").write_bytes(os.urandom(chunk * 2**20))
        return folder

    def token(self, role: str, dp: int | None = None, uses: int = 1) -> str:
        assert self.api is not None
        body: dict[str, Any] = {"role": role, "max_uses": uses}
        if dp is not None:
            body["dp_id"] = dp
        return str(self.api.post("/enrolment-tokens", body)["token"])

    def spawn_dps(self, site: Service) -> list[Callable[[float], Service]]:
        std_token = self.token("standard_dp", self.ids["std"])
        branch_token = self.token("branch_dp", self.ids["branch"])
        return [
            self.fleet.spawn(
                "standard-dp",
                [
                    "dp",
                    "serve",
                    "--site",
                    site.url,
                    "--token",
                    std_token,
                    "--data-dir",
                    str(self.root / "hq-dp"),
                    "--name",
                    "HQ-DP01",
                    "--ip-address",
                    f"{HQ_NET}.10",
                ],
            ),
            self.fleet.spawn(
                "branch-dp",
                [
                    "branch",
                    "serve",
                    "--site",
                    site.url,
                    "--token",
                    branch_token,
                    "--data-dir",
                    str(self.root / "br01-dp"),
                    "--name",
                    "BR01-DP",
                    "--ip-address",
                    f"{BRANCH_NET}.10",
                    "--bandwidth-limit",
                    str(self.options.branch_bandwidth),
                ],
            ),
        ]

    def await_dps(self, booting: list[Callable[[float], Service]]) -> Service:
        std, branch = (wait(90) for wait in booting)
        self.say(
            f"HQ-DP01 serving at {std.url}; BR01-DP serving at {branch.url} "
            f"(its WAN pulls limited to {self.options.branch_bandwidth / 2**20:.0f} MiB/s)"
        )
        return branch

    def stage_on_standard_dp(self) -> None:
        assert self.api is not None
        package = self.ids["package"]
        self.step(f"Staging {package} on the BITS-enabled standard DP HQ-DP01")
        self.api.post(f"/packages/{package}/distribution-points", {"dp_id": self.ids["std"]})
        self.wait_for(
            lambda: self.dp_row(self.ids["std"]).get("state") == "installed",
            "HQ-DP01 to hold the package",
            60,
        )
        self.narrate()

    def dp_row(self, dp_id: int) -> dict[str, Any]:
        assert self.api is not None
        rows = self.api.get(f"/packages/{self.ids['package']}/distribution-points")
        return next((r for r in rows if r["dp_id"] == dp_id), {})

    def wait_for(self, done: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"gave up waiting for {what} after {timeout:.0f}s")
            time.sleep(0.2)

    def run_clients(
        self, site: Service, attempt: str, names: list[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        names = self.ids["clients"] if names is None else names
        self.step(f"Clients in BRANCH-01 run the advertisement ({attempt}): {', '.join(names)}")

        def one(name: str) -> dict[str, Any]:
            host = 20 + self.ids["clients"].index(name) + 1
            done = self.fleet.run(
                [
                    "client",
                    "run",
                    "--once",
                    "--json",
                    "--site",
                    site.url,
                    "--token",
                    self.ids["client_token"],
                    "--data-dir",
                    str(self.root / name),
                    "--name",
                    name,
                    "--ip-address",
                    f"{BRANCH_NET}.{host}",
                ]
            )
            return first_outcome(done.stdout, done.stderr)

        pool = ThreadPoolExecutor(max(1, len(names)))
        try:
            results = dict(zip(names, pool.map(one, names), strict=True))
        finally:  # on Ctrl-C, not waiting: fleet.stop() ends the clients still running
            pool.shutdown(wait=False, cancel_futures=True)
        for name, outcome in results.items():
            self.narrator.client_outcome(name, outcome)
        self.narrate()
        return results

    def show_on_demand(self) -> None:
        assert self.api is not None
        requests = self.api.get("/on-demand-requests", params={"package_id": self.ids["package"]})
        for r in requests:
            self.say(
                f"on-demand request: BR01-DP for {r['package_id']} v{r['source_version']}"
                f" asked by {r['client_name']}: [bold]{r['state']}[/]"
            )
        row = self.dp_row(self.ids["branch"])
        if row:
            self.say(
                f"package DP list: BR01-DP {row['state']} (origin {row['origin']}): {row['detail']}"
            )
        self.narrate()

    def wait_for_branch(self) -> None:
        self.step("BR01-DP learns of it through its policy and pulls the content over the WAN")
        store = self.root / "br01-dp"
        total = int(self.ids["size"])
        with self.narrator.transfer("BR01-DP", total) as pulled:
            while self.dp_row(self.ids["branch"]).get("state") != "installed":
                pulled(min(total, bytes_under(store) - 2**16))
                time.sleep(0.2)
                if time.monotonic() - self.started > 300:
                    raise RuntimeError("the branch DP did not install the package in time")
            pulled(total)
        self.narrate()

    def summary(self, first: dict[str, Any], second: dict[str, Any], branch: Service) -> None:
        assert self.api is not None
        self.step("Summary")
        rows = []
        lan = 0
        for name in self.ids["clients"]:
            final = second.get(name, first[name])
            sources = bytes_by_source(str(final.get("detail", "")))
            lan += sources.get("BR01-DP", 0)
            then = second[name].get("result", "?") if name in second else "-"
            rows.append(
                (
                    name,
                    str(first[name].get("result")),
                    str(then),
                    ", ".join(sources) or "-",
                    str(final.get("exit_code")),
                )
            )
        self.narrator.table(("client", "first attempt", "then", "content from", "exit code"), rows)
        exposition = httpx.get(branch.url + "/metrics", timeout=10).text
        wan = metric(exposition, "peerdp_branch_pulled_bytes_total")
        lan_served = metric(
            exposition, "peerdp_dp_served_bytes_total", package_id=str(self.ids["package"])
        )
        self.say(f"bytes over the WAN (head office → branch): {wan / 2**20:.1f} MiB, once")
        self.say(f"bytes served inside the branch (BR01-DP → clients): {lan / 2**20:.1f} MiB")
        self.say(
            f"BR01-DP's /metrics: {wan / 2**20:.1f} MiB pulled, "
            f"{lan_served / 2**20:.1f} MiB served to clients"
        )
        asked = self.api.get(
            "/status-messages",
            params={"package_id": self.ids["package"], "type": "content_location", "limit": 1},
        )
        served = self.dp_row(self.ids["branch"]).get("updated_at")
        if asked and served:
            seconds = (parse_rfc3339(served) - parse_rfc3339(asked[0]["at"])).total_seconds()
            self.say(
                f"time from the first location request to the branch DP serving: {seconds:.1f}s"
            )


def run(options: Options, narrator: Narrator) -> int:
    keep = options.data_dir is not None
    if (
        options.data_dir is not None
        and options.data_dir.is_dir()
        and any(options.data_dir.iterdir())
    ):
        # A second run would find the first one's site database and stop half-way.
        narrator.refuse(
            f"{options.data_dir} is not empty (a previous demo?): "
            "give --data-dir a new or empty directory"
        )
        return 2
    root = options.data_dir or Path(tempfile.mkdtemp(prefix="peerdp-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    fleet = Fleet(
        logs,
        env={
            "PEERDP_ADMIN_TOKEN": secrets.token_urlsafe(16),
            "PEERDP_PENDING_DEADLINE_S": "120",
        },
    )
    demo = Demo(options, narrator, root, fleet)
    with EndingSignals() as signals:
        try:
            narrator.title(logs)
            return demo.run()
        except KeyboardInterrupt:
            narrator.interrupted("Interrupted")
            return 130
        except Stopped as stop:
            with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
                narrator.interrupted(f"Stopped by {stop}")
            return stop.exit_code
        finally:
            signals.hold()
            fleet.stop()
            if demo.api is not None:
                demo.api.close()
            if not keep:
                shutil.rmtree(root, ignore_errors=True)
