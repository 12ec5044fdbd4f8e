"""Prestaging, end to end with real processes: `peerdp package export` on the site's side,
`peerdp branch import` on the branch DP's, and the site's row `installed` with no transfer
over the WAN.

A site server (SQLite and PostgreSQL), a BITS-enabled standard DP (`peerdp dp serve`) that
holds the package and that the site and the branch DP reach only through a recording
forwarder, and a branch DP (`peerdp branch serve`). The package does not download
automatically, so the branch DP waits for a prestage (`waiting_for_prestage`, no deadline)
instead of pulling, and the forwarder proves that no content request reached the standard
DP.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from peerdp.security.signing import SiteKey
from tests.helpers.api import ok, tar_of, unique, wait_for
from tests.helpers.processes import SiteProcess, peerdp_cmd
from tests.machine.support import start_agent

pytestmark = pytest.mark.slow  # real site, DP and branch DP processes

WAIT = 120.0  # generous: the suite runs in parallel on small machines


@dataclass
class Recorder:
    """A TCP forwarder to a DP that records the request lines sent to `/content/`."""

    target_port: int
    listener: socket.socket = field(default_factory=socket.socket)
    content_requests: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def start(self) -> Recorder:
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(downstream, upstream, True)).start()
            threading.Thread(target=self._pipe, args=(upstream, downstream, False)).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        try:
            while data := source.recv(65536):
                if requests:
                    found = re.findall(rb"(?:GET|HEAD) /content/\S*", data)
                    self.content_requests.extend(f.decode() for f in found)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def metric(url: str, name: str) -> float:
    total = 0.0
    for line in httpx.get(url + "/metrics", timeout=30).text.splitlines():
        if line.startswith(name):
            total += float(line.split()[-1])
    return total


@dataclass
class Branch:
    site: SiteProcess
    admin: httpx.Client
    tmp: Path
    standard_dp: dict[str, Any]
    branch_dp: dict[str, Any]
    branch_url: str
    recorder: Recorder

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PEERDP_SITE_URL": self.site.url,
            "PEERDP_ADMIN_TOKEN": self.site.admin_token,
        }
        return subprocess.run(
            peerdp_cmd(*args), env=env, capture_output=True, text=True, timeout=WAIT
        )

    def row(self, package_id: str, dp_id: int) -> dict[str, Any] | None:
        rows = ok(self.admin.get(f"/packages/{package_id}/distribution-points"))
        return next((r for r in rows if r["dp_id"] == dp_id), None)

    def wait_state(self, package_id: str, dp_id: int, state: str) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            row = self.row(package_id, dp_id)
            return row if row is not None and row["state"] == state else None

        found: dict[str, Any] = wait_for(f"{dp_id} {state}", reached, timeout=WAIT)
        return found


@pytest.fixture(scope="module")
def branch(site_server: SiteProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Branch]:
    admin = site_server.admin()
    tmp = tmp_path_factory.mktemp("prestage")
    tag = unique("pre")

    def dp(kind: str) -> dict[str, Any]:
        body = {"name": f"{tag}-{kind}", "kind": kind, "bits_enabled": True}
        made: dict[str, Any] = ok(admin.post("/distribution-points", json=body), 201)
        return made

    def args(dp_row: dict[str, Any], role: str) -> list[str]:
        body = {"role": role, "dp_id": dp_row["id"], "max_uses": 1}
        token = str(ok(admin.post("/enrolment-tokens", json=body), 201)["token"])
        return ["--site", site_server.url, "--token", token, "--data-dir",
                str(tmp / role), "--name", dp_row["name"]]  # fmt: skip

    standard_dp, branch_dp = dp("standard"), dp("branch")
    port = free_port()
    recorder = Recorder(port).start()
    standard = start_agent(
        "dp", [*args(standard_dp, "standard_dp"), "--port", str(port), "--url", recorder.url]
    )
    try:
        branch_agent = start_agent("branch", args(branch_dp, "branch_dp"))
        try:
            yield Branch(
                site_server, admin, tmp, standard_dp, branch_dp, branch_agent.url, recorder
            )
        finally:
            branch_agent.stop(signal.SIGTERM)
    finally:
        standard.stop(signal.SIGTERM)
        recorder.close()
        admin.close()


def test_export_then_import_installs_with_no_wan_transfer(branch: Branch) -> None:
    admin = branch.admin
    files = {"setup.sh": b"echo prestaged\n", "data/payload.bin": secrets.token_bytes(300_000)}
    body = {"name": unique("prestaged"), "auto_download_branch": False}
    package_id = ok(admin.post("/packages", json=body), 201)["id"]
    headers = {"Content-Type": "application/x-tar"}
    ok(admin.post(f"/packages/{package_id}/versions", content=tar_of(files), headers=headers), 201)
    standard_id, branch_id = branch.standard_dp["id"], branch.branch_dp["id"]
    ok(admin.post(f"/packages/{package_id}/distribution-points", json={"dp_id": standard_id}), 201)
    branch.wait_state(package_id, standard_id, "installed")

    # The branch DP is added: it waits for a prestage (no deadline), it does not pull.
    added = ok(
        admin.post(f"/packages/{package_id}/distribution-points", json={"dp_id": branch_id}), 201
    )
    assert added["state"] == "waiting_for_prestage" and added["deadline_at"] is None
    assert f"peerdp package export {package_id}" in added["detail"]
    logged = ok(admin.get("/status-messages", params={"package_id": package_id}))
    added_event = [
        m for m in logged if m["type"] == "dp_added_to_package" and m["dp_id"] == branch_id
    ]
    assert added_event[0]["state"] == "waiting_for_prestage"
    assert branch.row(package_id, branch_id)["state"] == "waiting_for_prestage"  # type: ignore[index]

    archive = branch.tmp / f"{package_id}.prestage.tar"
    exported = branch.cli("package", "export", package_id, str(archive), "--json")
    assert exported.returncode == 0, exported.stderr
    assert json_of(exported)["source_version"] == 1 and archive.stat().st_size > 300_000

    # A damaged copy is refused in one line and stores nothing.
    damaged = branch.tmp / "damaged.tar"
    data = bytearray(archive.read_bytes())
    data[-2048] ^= 0x01  # inside the last object's bytes
    damaged.write_bytes(bytes(data))
    refused = branch.cli(
        "branch", "import", str(damaged), "--data-dir", str(branch.tmp / "branch_dp")
    )
    assert refused.returncode == 1 and refused.stderr.startswith("Error: "), refused.stderr
    assert "nothing stored" in refused.stderr and refused.stderr.count("\n") == 1
    assert not (branch.tmp / "branch_dp" / "store" / "manifests" / package_id).exists()
    assert branch.row(package_id, branch_id)["state"] == "waiting_for_prestage"  # type: ignore[index]

    imported = branch.cli(
        "branch", "import", str(archive), "--data-dir", str(branch.tmp / "branch_dp")
    )
    assert imported.returncode == 0, imported.stderr
    assert f"Imported {package_id} source version 1" in imported.stdout
    row = branch.wait_state(package_id, branch_id, "installed")
    assert "prestaged" in row["detail"] and "none over the WAN" in row["detail"]

    # The running branch DP serves it to clients.
    key = SiteKey.load_or_create(branch.site.data_dir / "site-key.pem")
    token = key.access_token(package_id, 1, "a-client")
    served = httpx.get(
        f"{branch.branch_url}/content/{package_id}/1/files/data/payload.bin",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert served.status_code == 200 and served.content == files["data/payload.bin"]

    # Nothing went over the WAN: the branch DP pulled nothing, and no content request
    # reached the standard DP (which the recorder sees, as one request through it shows).
    assert metric(branch.branch_url, "peerdp_branch_pulled_bytes_total") == 0
    assert branch.recorder.content_requests == []
    httpx.head(f"{branch.recorder.url}/content/{package_id}/1/manifest", timeout=30)
    wait_for("the recorder to see a request", lambda: branch.recorder.content_requests)
    assert branch.recorder.content_requests == [f"HEAD /content/{package_id}/1/manifest"]


def json_of(done: subprocess.CompletedProcess[str]) -> Any:
    import json

    return json.loads(done.stdout)
