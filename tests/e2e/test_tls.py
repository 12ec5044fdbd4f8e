"""The seed's flow over HTTPS, every role a real process with a certificate of one test CA.

The site, a BITS-enabled standard DP and a protected branch DP serve HTTPS; the DPs and
the client register with `--ca-file` (pinned in their identity) and run without it after.
The package holds a file big enough for the download fast path (socket reads under TLS).
A machine given another CA is refused with one line that says why.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from peerdp.security.tls import client_context
from peerdp.transfer.download import PIPELINE_MIN_BYTES, DownloadFailed, Source, fetch_manifest
from tests.helpers.api import ok, tar_of, unique, wait_for
from tests.helpers.processes import SiteProcess, peerdp_cmd, start_site
from tests.helpers.tls import TestCA
from tests.machine.support import AgentProcess, start_agent

pytestmark = pytest.mark.slow  # a site of real processes

HQ_NET = "192.168.71"
BRANCH_NET = "10.71.1"
WAIT = 120.0


@dataclass
class SecureOffice:
    site: SiteProcess
    admin: httpx.Client
    ca: TestCA
    tmp: Path
    standard_dp: dict[str, Any]
    branch_dp: dict[str, Any]
    client_token: str

    def client_run(self, name: str, ip: str, *extra: str) -> subprocess.CompletedProcess[str]:
        args = [
            "client", "run", "--site", self.site.url, "--token", self.client_token,
            "--data-dir", str(self.tmp / name), "--name", name, "--ip-address", ip,
            "--once", "--json", *extra,
        ]  # fmt: skip
        return subprocess.run(
            peerdp_cmd(*args),
            env={**os.environ, "E2E_OUT": str(self.tmp / f"{name}.out")},
            capture_output=True,
            text=True,
            timeout=WAIT,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture(scope="module")
def secure_office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureOffice]:
    tmp = tmp_path_factory.mktemp("tls-office")
    ca = TestCA.create(tmp / "ca")
    certs = {role: ca.server(tmp / "certs", role) for role in ("site", "hq-dp", "br-dp")}
    env = {
        "PEERDP_TLS_CERT": str(certs["site"].cert),
        "PEERDP_TLS_KEY": str(certs["site"].key),
        "PEERDP_CA_FILE": str(ca.ca_file),  # the DPs' CA, for the distribution manager
    }
    agents: list[AgentProcess] = []
    with contextlib.ExitStack() as stack:
        site = start_site(
            tmp / "site", f"sqlite:///{tmp / 'site.db'}", extra_env=env, verify=str(ca.ca_file)
        )
        stack.callback(site.stop)
        admin = stack.enter_context(site.admin())
        ok(admin.post("/boundaries", json=_subnet("HQ", HQ_NET)), 201)
        branch = ok(admin.post("/boundaries", json=_subnet("BRANCH", BRANCH_NET)), 201)
        dps = {
            "hq-dp": ok(admin.post("/distribution-points", json={
                "name": unique("TLS-HQ-DP"), "kind": "standard", "bits_enabled": True,
                "ip_addresses": [f"{HQ_NET}.10"]}), 201),
            "br-dp": ok(admin.post("/distribution-points", json={
                "name": unique("TLS-BR-DP"), "kind": "branch", "bits_enabled": True,
                "protected_boundary_ids": [branch["id"]],
                "ip_addresses": [f"{BRANCH_NET}.10"]}), 201),
        }  # fmt: skip
        for key, kind, role, extra in (
            ("hq-dp", "dp", "standard_dp", []),
            ("br-dp", "branch", "branch_dp", ["--poll-interval", "300", "--retry-base", "0.3"]),
        ):
            body = {"role": role, "dp_id": dps[key]["id"], "max_uses": 1}
            token = ok(admin.post("/enrolment-tokens", json=body), 201)["token"]
            args = [
                "--site", site.url, "--token", token, "--data-dir", str(tmp / key),
                "--name", dps[key]["name"], "--ca-file", str(ca.ca_file),
                "--tls-cert", str(certs[key].cert), "--tls-key", str(certs[key].key), *extra,
            ]  # fmt: skip
            agent = start_agent(kind, args)
            agents.append(agent)
            stack.callback(agent.stop, signal.SIGTERM)
            assert agent.url.startswith("https://"), agent.url
        body = {"role": "client", "max_uses": 100}
        client_token = ok(admin.post("/enrolment-tokens", json=body), 201)["token"]
        yield SecureOffice(site, admin, ca, tmp, dps["hq-dp"], dps["br-dp"], client_token)


def _subnet(name: str, net: str) -> dict[str, Any]:
    return {"name": unique(name), "type": "ip_subnet", "value": f"{net}.0/24"}


def test_seed_flow_over_https(secure_office: SecureOffice) -> None:
    office, admin = secure_office, secure_office.admin
    assert office.site.url.startswith("https://")
    tag = unique("tls")
    big = os.urandom(PIPELINE_MIN_BYTES + 12345)  # read from the TLS socket by the fast path
    files = {"payload.txt": f"payload of {tag}\n".encode(), "big.bin": big}
    package = ok(admin.post("/packages", json={"name": tag, "on_demand": True}), 201)
    ok(
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
    advertisement = {
        "name": f"{tag}-adv",
        "package_id": package["id"],
        "program_name": "install",
        "collection_id": collection["id"],
        "protected_only": True,
    }
    ok(admin.post("/advertisements", json=advertisement), 201)
    std, br = office.standard_dp, office.branch_dp
    dp_list = f"/packages/{package['id']}/distribution-points"
    ok(admin.post(dp_list, json={"dp_id": std["id"]}), 201)  # pushed over HTTPS

    def state_of(dp_id: int) -> str | None:
        rows = {row["dp_id"]: row["state"] for row in ok(admin.get(dp_list))}
        return rows.get(dp_id)

    wait_for("the standard DP installed", lambda: state_of(std["id"]) == "installed", WAIT)
    name = f"{tag}-pc1"
    ok(admin.post(f"/collections/{collection['id']}/members", json={"member_names": [name]}))

    first = office.client_run(name, f"{BRANCH_NET}.20", "--ca-file", str(office.ca.ca_file))
    [outcome] = json.loads(first.stdout)
    assert outcome["detail"].startswith("on_demand_triggered"), first.stdout + first.stderr
    wait_for("the branch DP pulled", lambda: state_of(br["id"]) == "installed", WAIT)

    # The client's CA was pinned at registration: no --ca-file now.
    second = office.client_run(name, f"{BRANCH_NET}.20")
    [outcome] = json.loads(second.stdout)
    assert second.returncode == 0 and outcome["result"] == "succeeded", second.stderr
    assert f"(from {br['name']}:" in outcome["detail"], outcome
    assert (office.tmp / f"{name}.out").read_bytes() == files["payload.txt"]
    identity = json.loads((office.tmp / name / "identity.json").read_text())
    assert identity["site_ca"] == office.ca.ca_file.read_text()


def test_a_certificate_from_another_ca_is_refused(
    secure_office: SecureOffice, tmp_path: Path
) -> None:
    other = TestCA.create(tmp_path / "other", "another CA")
    name = unique("tls-stranger")
    done = secure_office.client_run(name, f"{BRANCH_NET}.30", "--ca-file", str(other.ca_file))
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: the site's certificate is not trusted: "), line
    assert "(use --ca-file or PEERDP_CA_FILE)" in line
    assert not (tmp_path / name).exists()

    admin = subprocess.run(
        peerdp_cmd("--ca-file", str(other.ca_file), "boundary", "list"),
        env={**os.environ, "PEERDP_SITE_URL": secure_office.site.url,
             "PEERDP_ADMIN_TOKEN": secure_office.site.admin_token},
        capture_output=True,
        text=True,
        timeout=WAIT,
    )  # fmt: skip
    assert admin.returncode == 1
    assert admin.stderr.startswith("Error: the site's certificate is not trusted: "), admin.stderr

    # A DP's certificate is checked the same way by whatever downloads from it.
    row = ok(secure_office.admin.get(f"/distribution-points/{secure_office.standard_dp['id']}"))
    source = Source("hq", row["url"])
    with pytest.raises(DownloadFailed) as failed:
        fetch_manifest(source, "PS100001", 1, "token", verify=client_context(other.ca_file))
    assert "the DP's certificate is not trusted" in failed.value.failures[0].reason
