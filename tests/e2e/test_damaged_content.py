"""Damaged content on a DP is found, reported and repaired, with real processes only.

A site server, two BITS-enabled standard DPs (`peerdp dp serve`: one validating its content
every 10 s, the minimum, one at the default of 24 h, so it finds damage only on a read) and
a branch DP (`peerdp branch serve`, validating every 10 s). A byte is flipped in a DP's
stored file; the DP withdraws the version and reports `content_damaged`, the site takes
the row out of `installed` and sends the content again (the branch DP pulls it again), and
no client runs the damaged file, no branch DP keeps it.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from peerdp.security.signing import SiteKey
from tests.helpers.api import ok, tar_of, unique, wait_for
from tests.helpers.processes import SiteProcess, peerdp_cmd
from tests.machine.support import AgentProcess, start_agent

pytestmark = pytest.mark.slow  # a site of real processes

_NETS = itertools.count(random.randint(0, 200))
WAIT = 120.0  # generous: the suite runs in parallel on small machines


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def flip_a_byte(path: Path) -> None:
    """Flip one byte in place: same size, wrong SHA-256 (what a failing disk does)."""
    os.chmod(path, 0o644)
    with open(path, "r+b") as fh:
        first = fh.read(1)
        fh.seek(0)
        fh.write(bytes([first[0] ^ 0xFF]))


@dataclass
class Office:
    site: SiteProcess
    admin: httpx.Client
    tmp: Path
    hq_net: str
    branch_net: str
    dps: dict[str, dict[str, Any]]  # validating (10 s), default (24 h), branch
    agents: dict[str, AgentProcess]
    client_token: str
    hosts: Iterator[int] = field(default_factory=lambda: itertools.count(20))

    def object_path(self, key: str, data: bytes) -> Path:
        store = "store" if key == "branch" else "content"
        digest = sha(data)
        return self.tmp / key / store / "objects" / digest[:2] / digest


@pytest.fixture(scope="module")
def office(site_server: SiteProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    admin = site_server.admin()
    tmp = tmp_path_factory.mktemp("damage")
    tag = unique("dmg")
    n = next(_NETS)
    hq_net, branch_net = f"192.168.{n}", f"10.{n}.7"
    boundaries = {}
    for name, net in (("HQ", hq_net), ("BR", branch_net)):
        body = {"name": f"{tag}-{name}", "type": "ip_subnet", "value": f"{net}.0/24"}
        boundaries[name] = ok(admin.post("/boundaries", json=body), 201)
    bodies = {
        "validating": {"kind": "standard", "ip_addresses": [f"{hq_net}.10"]},
        "default": {"kind": "standard", "ip_addresses": [f"{hq_net}.11"]},
        "branch": {"kind": "branch", "ip_addresses": [f"{branch_net}.10"],
                   "protected_boundary_ids": [boundaries["BR"]["id"]]},
    }  # fmt: skip
    dps = {
        key: ok(
            admin.post(
                "/distribution-points",
                json={"name": f"{tag}-{key}", "bits_enabled": True, **body},
            ),
            201,
        )
        for key, body in bodies.items()
    }

    def args(key: str, role: str) -> list[str]:
        body = {"role": role, "dp_id": dps[key]["id"], "max_uses": 1}
        token = str(ok(admin.post("/enrolment-tokens", json=body), 201)["token"])
        address = dps[key]["ip_addresses"][0]
        return ["--site", site_server.url, "--token", token, "--data-dir", str(tmp / key),
                "--name", dps[key]["name"], "--ip-address", address]  # fmt: skip

    commands = {
        "validating": ("dp", [*args("validating", "standard_dp"), "--validate-interval", "10s"]),
        "default": ("dp", args("default", "standard_dp")),  # the default schedule: 24 h
        "branch": ("branch", [*args("branch", "branch_dp"), "--validate-interval", "10s",
                              "--poll-interval", "300", "--retry-base", "0.3"]),
    }  # fmt: skip
    agents: dict[str, AgentProcess] = {}
    try:
        with ThreadPoolExecutor(len(commands)) as pool:
            booting = {key: pool.submit(start_agent, *command) for key, command in commands.items()}
            for key, future in booting.items():
                with contextlib.suppress(Exception):
                    agents[key] = future.result()
        assert set(agents) == set(commands), "a DP did not start"
        body = {"role": "client", "max_uses": 1000}
        client_token = str(ok(admin.post("/enrolment-tokens", json=body), 201)["token"])
        yield Office(site_server, admin, tmp, hq_net, branch_net, dps, agents, client_token)
    finally:
        for agent in agents.values():
            agent.stop(signal.SIGTERM)
        admin.close()


@dataclass
class Deployment:
    office: Office
    tag: str
    files: dict[str, bytes]
    package_id: str
    source_version: int
    advertisement: dict[str, Any]
    collection: dict[str, Any]

    @property
    def admin(self) -> httpx.Client:
        return self.office.admin

    def add(self, key: str) -> None:
        dp_id = self.office.dps[key]["id"]
        path = f"/packages/{self.package_id}/distribution-points"
        ok(self.admin.post(path, json={"dp_id": dp_id}), 201)

    def row(self, key: str) -> dict[str, Any] | None:
        rows = ok(self.admin.get(f"/packages/{self.package_id}/distribution-points"))
        dp_id = self.office.dps[key]["id"]
        return next((r for r in rows if r["dp_id"] == dp_id), None)

    def wait_installed(self, key: str) -> dict[str, Any]:
        row: dict[str, Any] = wait_for(
            f"{self.package_id} installed on {key}",
            lambda: (r := self.row(key)) and r["state"] == "installed" and r,
            WAIT,
        )
        return row

    def damage_reports(self, key: str) -> list[dict[str, Any]]:
        params = {"package_id": self.package_id, "type": "package_state"}
        rows = ok(self.admin.get("/status-messages", params=params))
        dp_id = self.office.dps[key]["id"]
        return [
            r
            for r in rows
            if r["state"] == "content_damaged"
            and r["dp_id"] == dp_id
            and r["component"] != "distribution"
        ]

    def wait_damage_report(self, key: str, timeout: float = WAIT) -> dict[str, Any]:
        found: list[dict[str, Any]] = wait_for(
            f"a content_damaged report from {key}",
            lambda: self.damage_reports(key),
            timeout,
            every=0.1,
        )
        return found[0]

    def run_client(self, net: str) -> tuple[dict[str, Any], Path]:
        """One `peerdp client run --once --json` in `net`: its outcome, and where its
        program copied payload.txt."""
        host = next(self.office.hosts)
        name = f"{self.tag}-pc{host}"
        members = {"member_names": [name]}
        ok(self.admin.post(f"/collections/{self.collection['id']}/members", json=members))
        out = self.office.tmp / f"{name}.out"
        args = [
            "client", "run", "--site", self.office.site.url,
            "--token", self.office.client_token, "--data-dir", str(self.office.tmp / name),
            "--name", name, "--ip-address", f"{net}.{host}", "--once", "--json",
        ]  # fmt: skip
        done = subprocess.run(
            peerdp_cmd(*args),
            env={**os.environ, "E2E_OUT": str(out)},
            capture_output=True,
            text=True,
            timeout=WAIT,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode in (0, 1), done.stdout + done.stderr
        [outcome] = json.loads(done.stdout)
        return outcome, out


def deploy(office: Office, *, on: str | None) -> Deployment:
    """A package (payload.txt, copied to $E2E_OUT by its program, and a larger file),
    advertised to a collection; put on DP `on` and installed there."""
    admin = office.admin
    tag = unique("d")
    files = {"payload.txt": f"payload of {tag}\n".encode(), "big.bin": os.urandom(256 * 1024)}
    package = ok(admin.post("/packages", json={"name": f"{tag}-pkg"}), 201)
    version = ok(
        admin.post(
            f"/packages/{package['id']}/versions",
            content=tar_of(files),
            headers={"Content-Type": "application/x-tar"},
        ),
        201,
    )
    program = {"name": "install", "command_line": 'cp payload.txt "$E2E_OUT"', "timeout_s": 60}
    ok(admin.post(f"/packages/{package['id']}/programs", json=program), 201)
    collection = ok(admin.post("/collections", json={"name": f"{tag}-col"}), 201)
    body = {
        "name": f"{tag}-adv",
        "package_id": package["id"],
        "program_name": "install",
        "collection_id": collection["id"],
        "protected_only": False,
    }
    advertisement = ok(admin.post("/advertisements", json=body), 201)
    d = Deployment(
        office, tag, files, package["id"], version["source_version"], advertisement, collection
    )
    if on is not None:
        d.add(on)
        d.wait_installed(on)
    return d


def assert_repaired(d: Deployment, key: str, data: bytes) -> dict[str, Any]:
    """The row is installed again, the file is whole on the DP again; the row."""
    row = d.wait_installed(key)
    assert d.office.object_path(key, data).read_bytes() == data
    return row


def test_a_flipped_byte_found_by_content_validation_is_withdrawn_reported_and_sent_again(
    office: Office,
) -> None:
    d = deploy(office, on="validating")
    path = office.object_path("validating", d.files["big.bin"])
    flipped_at = time.monotonic()
    flip_a_byte(path)
    report = d.wait_damage_report("validating", timeout=60)
    took = time.monotonic() - flipped_at
    print(f"\ncontent validation (10 s) found the damage after {took:.1f} s")
    assert took < 30, "found by the 10 s schedule, not by chance"
    assert report["detail"].startswith("content damaged: big.bin (")
    assert "found by content validation" in report["detail"]
    assert report["severity"] == "warning"
    row = assert_repaired(d, "validating", d.files["big.bin"])
    # Only the damaged file was sent again: the intact one stayed on the DP.
    assert row["detail"].startswith("copied 1 file(s)"), row
    outcome, out = d.run_client(office.hq_net)
    assert outcome["result"] == "succeeded", outcome
    assert out.read_bytes() == d.files["payload.txt"]


def test_a_flipped_byte_found_on_read_is_never_run_and_is_sent_again(office: Office) -> None:
    """The default schedule (24 h) does not run during the test: a client's read finds it."""
    d = deploy(office, on="default")
    flip_a_byte(office.object_path("default", d.files["payload.txt"]))
    read_at = time.monotonic()
    outcome, out = d.run_client(office.hq_net)
    # The client may get it after the site sent it again, never the damaged bytes.
    assert not out.exists() or out.read_bytes() == d.files["payload.txt"], outcome
    report = d.wait_damage_report("default", timeout=30)
    print(f"\nfound on read; reported {time.monotonic() - read_at:.1f} s after the client started")
    assert report["detail"].startswith("content damaged: payload.txt (")
    assert "found on read" in report["detail"]
    assert_repaired(d, "default", d.files["payload.txt"])
    outcome, out = d.run_client(office.hq_net)
    assert outcome["result"] == "succeeded", outcome
    assert out.read_bytes() == d.files["payload.txt"]


def test_a_damaged_read_withdraws_the_whole_version_at_once(office: Office) -> None:
    """The read answers 404 and the row leaves `installed` at once (measured from the read
    to the row's move); the DP serves the file again once the site sent it again. (That the
    manifest answers 404 meanwhile is shown on the store: here the site is faster.)"""
    d = deploy(office, on="default")
    flip_a_byte(office.object_path("default", d.files["big.bin"]))
    key = SiteKey.load_or_create(office.site.data_dir / "site-key.pem")
    token = key.access_token(d.package_id, d.source_version, "a-client")
    auth = {"Authorization": f"Bearer {token}"}
    base = f"{office.agents['default'].url}/content/{d.package_id}/{d.source_version}"
    assert httpx.get(f"{base}/manifest", headers=auth).status_code == 200
    read_at = time.monotonic()
    assert httpx.get(f"{base}/files/big.bin", headers=auth).status_code == 404
    # The report moves the row in its transaction (it may be installed again by the next poll).
    d.wait_damage_report("default", timeout=30)
    print(f"\non read: the row left installed {time.monotonic() - read_at:.2f} s after the read")
    assert_repaired(d, "default", d.files["big.bin"])
    assert httpx.get(f"{base}/files/big.bin", headers=auth).content == d.files["big.bin"]


def test_a_branch_dp_never_keeps_damaged_content_from_its_source(office: Office) -> None:
    """The standard DP the branch DP pulls from has a flipped byte: the branch DP's pull
    finds it (the source withdraws it), and it holds the content once it was sent again."""
    d = deploy(office, on="default")
    flip_a_byte(office.object_path("default", d.files["big.bin"]))
    d.add("branch")
    d.wait_damage_report("default", timeout=60)
    assert_repaired(d, "default", d.files["big.bin"])
    assert_repaired(d, "branch", d.files["big.bin"])


def test_a_branch_dp_validates_its_content_and_pulls_it_again(office: Office) -> None:
    d = deploy(office, on="default")
    d.add("branch")
    d.wait_installed("branch")
    flipped_at = time.monotonic()
    flip_a_byte(office.object_path("branch", d.files["big.bin"]))
    report = d.wait_damage_report("branch", timeout=60)
    print(
        f"\nthe branch DP's validation (10 s) found it after {time.monotonic() - flipped_at:.1f} s"
    )
    assert report["detail"].startswith("content damaged: big.bin (")
    assert_repaired(d, "branch", d.files["big.bin"])
    outcome, out = d.run_client(office.branch_net)
    assert outcome["result"] == "succeeded", outcome
    assert out.read_bytes() == d.files["payload.txt"]
