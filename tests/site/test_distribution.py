"""The distribution manager against real standard DPs: push, serve to a client, retry,
fail, refresh, remove, restart, damage, pending deadlines, several site servers."""

from __future__ import annotations

import hashlib
import os
import random
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dp.standard_support import DPProcess, Site, start_dp
from tests.helpers.api import ok, unique, wait_for
from tests.helpers.postgres import pg_schema
from tests.helpers.processes import SiteProcess, start_site
from tests.site.mp_world import build, two_site_processes

pytestmark = pytest.mark.slow  # real site server and DP processes

ATTEMPTS = 3
PENDING_DEADLINE_S = 1.0
SITE_ENV = {
    "PEERDP_DISTRIBUTION_ATTEMPTS": str(ATTEMPTS),
    "PEERDP_DISTRIBUTION_BACKOFF_S": "0.2",
    "PEERDP_PENDING_DEADLINE_S": str(PENDING_DEADLINE_S),
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'site.db'}"
        return
    with pg_schema("d") as url:
        yield url


@pytest.fixture(scope="module")
def server(db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteProcess]:
    """A site with few attempts, a short backoff and a short pending deadline."""
    process = start_site(tmp_path_factory.mktemp("site"), db, extra_env=SITE_ENV)
    yield process
    process.stop()


@pytest.fixture
def site(server: SiteProcess) -> Site:
    return Site.of(server)


@pytest.fixture
def dps(tmp_path: Path) -> Iterator[list[DPProcess]]:
    """DP processes a test starts; all stopped at its end."""
    started: list[DPProcess] = []
    yield started
    for process in started:
        process.stop()


def new_dp(site: Site, dps: list[DPProcess], tmp: Path, *args: str) -> tuple[int, DPProcess]:
    dp_id, token = site.standard_dp()
    process = start_dp(site.server, tmp / unique("dp"), token, *args)
    dps.append(process)
    return dp_id, process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def locate(site: Site, package_id: str, version: int, dp_id: int) -> dict[str, Any]:
    """Boundary, collection, advertisement and a client, through the admin API and the MP;
    the client's content-location answer."""
    net = f"10.{random.randint(100, 250)}.{random.randint(0, 250)}"
    tag = unique("c")
    admin = site.admin
    value = f"{net}.0/24"
    ok(admin.post("/boundaries", json={"name": tag, "type": "ip_subnet", "value": value}), 201)
    collection = ok(admin.post("/collections", json={"name": tag, "member_names": [tag]}), 201)
    program = {"name": "install", "command_line": "setup.exe /q"}
    ok(admin.post(f"/packages/{package_id}/programs", json=program), 201)
    advert = {
        "name": tag,
        "package_id": package_id,
        "program_name": "install",
        "collection_id": collection["id"],
        "allow_remote": True,
    }
    advertisement = ok(admin.post("/advertisements", json=advert), 201)
    ok(admin.patch(f"/distribution-points/{dp_id}", json={"ip_addresses": [f"{net}.5"]}))
    body = {"token": site.token("client"), "name": tag, "ip_addresses": [f"{net}.20"]}
    credential = ok(httpx.post(site.server.url + "/mp/v1/register", json=body), 201)["credential"]
    request = {
        "advertisement_id": advertisement["id"],
        "package_id": package_id,
        "source_version": version,
        "ip_addresses": [f"{net}.20"],
    }
    headers = {"Authorization": f"Bearer {credential}"}
    answer: dict[str, Any] = ok(
        httpx.post(site.server.url + "/mp/v1/content-location", json=request, headers=headers)
    )
    return answer


def curl(url: str, token: str, out: Path) -> bytes:
    subprocess.run(
        ["curl", "-sSf", "-H", f"Authorization: Bearer {token}", "-o", str(out), url],
        check=True,
        timeout=60,
    )
    return out.read_bytes()


def get_file(dp: DPProcess, package_id: str, version: int, path: str, key: Any) -> httpx.Response:
    token = key.access_token(package_id, version, "tester")
    url = f"{dp.url}/content/{package_id}/{version}/files/{path}"
    return httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def site_key(site: Site) -> Any:
    from peerdp.security.signing import SiteKey

    return SiteKey.load_or_create(site.server.data_dir / "site-key.pem")


# -- tests ------------------------------------------------------------------------------


def test_pushed_package_is_installed_and_served_to_a_client(
    site: Site, dps: list[DPProcess], tmp_path: Path
) -> None:
    dp_id, dp = new_dp(site, dps, tmp_path)
    files = {"setup.exe": os.urandom(3 * 1024 * 1024 + 7), "doc/read me.txt": b"hello\n"}
    package_id, version = site.package(files)
    site.add(package_id, dp_id)
    row = site.wait_state(package_id, dp_id, {"installed"})
    assert row["source_version"] == version and "copied 2 file(s)" in row["detail"]

    answer = locate(site, package_id, version, dp_id)
    [located] = [d for d in answer["distribution_points"] if d["dp_id"] == dp_id]
    assert located["url"] == dp.url
    url = f"{dp.url}/content/{package_id}/{version}/files/setup.exe"
    assert curl(url, located["access_token"], tmp_path / "setup.exe") == files["setup.exe"]
    spaced = f"{dp.url}/content/{package_id}/{version}/files/doc/read%20me.txt"
    assert curl(spaced, located["access_token"], tmp_path / "readme") == b"hello\n"
    assert dp.metric("peerdp_dp_objects_received_total") == 2

    # An update: only the new file travels, and the old version leaves the DP.
    version2 = site.new_version(package_id, {**files, "patch.bin": b"patch"})
    row = site.wait_state(package_id, dp_id, {"installed"})
    assert row["source_version"] == version2
    wait_for("old version gone", lambda: dp.metric("peerdp_dp_versions_removed_total") == 1, 10)
    assert dp.metric("peerdp_dp_objects_received_total") == 3
    assert get_file(dp, package_id, version, "setup.exe", site_key(site)).status_code == 404


def test_down_dp_retries_then_fails_and_gets_it_when_it_registers(
    site: Site, dps: list[DPProcess], tmp_path: Path
) -> None:
    port = free_port()
    dp_id, token = site.standard_dp(url=f"http://127.0.0.1:{port}")
    package_id, _ = site.package({"app.msi": os.urandom(10_000)})
    site.add(package_id, dp_id)
    row = site.wait_state(package_id, dp_id, {"install_retrying", "install_failed"})
    assert "cannot reach" in row["detail"]
    row = site.wait_state(package_id, dp_id, {"install_failed"}, timeout=30)
    assert row["attempts"] == ATTEMPTS and "gave up after 3 attempt(s)" in row["detail"]
    states = [m["state"] for m in site.messages(package_id=package_id, type="package_state")]
    assert states.count("install_retrying") == ATTEMPTS - 1 and "install_failed" in states

    # It failed only because the DP could not be reached: its registration sends it again.
    dps.append(start_dp(site.server, tmp_path / "dp", token, "--port", str(port)))
    row = site.wait_state(package_id, dp_id, {"installed"})
    assert row["attempts"] == 0
    states = [m["state"] for m in site.messages(package_id=package_id, type="package_state")]
    assert states[-2:] == ["install_pending", "installed"]

    # A refresh sends an installed version again.
    refreshed = site.refresh(package_id, dp_id)
    assert refreshed["state"] in {"install_pending", "installed"}
    row = site.wait_state(package_id, dp_id, {"installed"})
    assert row["attempts"] == 0 and "refresh" not in row["detail"]


def test_refresh_is_refused_for_rows_it_cannot_apply_to(site: Site) -> None:
    branch = {"name": unique("br"), "kind": "branch"}
    dp_id = ok(site.admin.post("/distribution-points", json=branch), 201)["id"]
    package_id, _ = site.package({"a": b"a"})
    path = f"/packages/{package_id}/distribution-points/{dp_id}"
    assert site.admin.post(path + "/refresh").status_code == 404
    site.add(package_id, dp_id)
    pending = site.admin.post(path + "/refresh")
    assert pending.status_code == 409 and "install_pending" in pending.json()["detail"]
    ok(site.admin.delete(path))
    removing = site.admin.post(path + "/refresh")
    assert removing.status_code == 409 and "removal" in removing.json()["detail"]


def test_removal_deletes_the_content_and_the_row(
    site: Site, dps: list[DPProcess], tmp_path: Path
) -> None:
    dp_id, dp = new_dp(site, dps, tmp_path)
    files = {"tool.exe": os.urandom(20_000)}
    package_id, version = site.package(files)
    site.add(package_id, dp_id)
    site.wait_state(package_id, dp_id, {"installed"})
    key = site_key(site)
    assert get_file(dp, package_id, version, "tool.exe", key).content == files["tool.exe"]
    ok(site.admin.delete(f"/packages/{package_id}/distribution-points/{dp_id}"))
    wait_for("the row to go", lambda: site.row(package_id, dp_id) is None)
    assert get_file(dp, package_id, version, "tool.exe", key).status_code == 404
    assert not dp.object_path(sha(files["tool.exe"])).exists()
    [removed] = [
        m for m in site.messages(package_id=package_id, dp_id=dp_id) if m["state"] == "removed"
    ]
    assert "deleted" in removed["detail"]


def test_deleting_a_package_removes_it_from_standard_dps(
    site: Site, dps: list[DPProcess], tmp_path: Path
) -> None:
    dp_id, dp = new_dp(site, dps, tmp_path)
    files = {"tool.exe": os.urandom(20_000)}
    package_id, version = site.package(files)
    site.add(package_id, dp_id)
    site.wait_state(package_id, dp_id, {"installed"})
    key = site_key(site)
    assert get_file(dp, package_id, version, "tool.exe", key).status_code == 200

    answer = ok(site.admin.delete(f"/packages/{package_id}"), 202)
    assert answer["removing_from"] == 1
    [row] = answer["distribution_points"]
    assert row["dp_id"] == dp_id and row["state"].startswith("removal_")
    wait_for(
        "the package to go", lambda: site.admin.get(f"/packages/{package_id}").status_code == 404
    )
    assert get_file(dp, package_id, version, "tool.exe", key).status_code == 404
    assert not dp.object_path(sha(files["tool.exe"])).exists()
    assert not (dp.data_dir / "content" / "manifests" / package_id / f"{version}.json").exists()
    messages = site.messages(package_id=package_id)
    removed = [m for m in messages if m["type"] == "package_state" and m["state"] == "removed"]
    assert [m["dp_id"] for m in removed] == [dp_id]
    types = [m["type"] for m in messages]
    assert types.index("package_deleted") < types.index("package_removed")


def test_a_dp_down_when_its_package_is_deleted_removes_it_when_it_comes_back(
    site: Site, dps: list[DPProcess], tmp_path: Path
) -> None:
    dp_id, dp = new_dp(site, dps, tmp_path)
    files = {"tool.exe": os.urandom(20_000)}
    package_id, version = site.package(files)
    site.add(package_id, dp_id)
    site.wait_state(package_id, dp_id, {"installed"})
    port = dp.url.rsplit(":", 1)[1]
    dps.remove(dp)
    dp.stop()

    ok(site.admin.delete(f"/packages/{package_id}"), 202)
    row = site.wait_state(package_id, dp_id, {"removal_failed"})
    assert "cannot reach" in row["detail"] and "gave up" in row["detail"]
    states = [m["state"] for m in site.messages(package_id=package_id, type="package_state")]
    assert states.count("removal_retrying") == ATTEMPTS - 1 and "removal_failed" in states
    # Meanwhile the package is still there, deleted, and nothing can be added to it.
    package = ok(site.admin.get(f"/packages/{package_id}"))
    assert package["deleted_at"] is not None
    refused = site.admin.post(f"/packages/{package_id}/distribution-points", json={"dp_id": dp_id})
    assert refused.status_code == 409 and "deleted" in refused.json()["detail"]

    # Back up (same data directory and port): it deletes the content at start and says so.
    back = start_dp(site.server, dp.data_dir, None, "--port", port)
    dps.append(back)
    wait_for(
        "the package to go", lambda: site.admin.get(f"/packages/{package_id}").status_code == 404
    )
    assert not back.object_path(sha(files["tool.exe"])).exists()
    assert not (back.data_dir / "content" / "manifests" / package_id / f"{version}.json").exists()
    assert get_file(back, package_id, version, "tool.exe", site_key(site)).status_code == 404


def test_restarted_dp_keeps_its_content_and_reports_it(
    site: Site, dps: list[DPProcess], tmp_path: Path
) -> None:
    dp_id, dp = new_dp(site, dps, tmp_path)
    files = {"big.bin": os.urandom(1 << 20), "small.txt": b"small"}
    package_id, version = site.package(files)
    site.add(package_id, dp_id)
    site.wait_state(package_id, dp_id, {"installed"})
    assert dp.stop() == 0
    again = start_dp(site.server, dp.data_dir)  # no token: the identity is kept
    dps.append(again)
    assert again.url == dp.url  # the port of the last run is taken again

    def reported() -> bool:
        messages = site.messages(package_id=package_id, dp_id=dp_id, type="package_state")
        return any(m["detail"] == "held and verified at start" for m in messages)

    wait_for("the restarted DP to report what it holds", reported, 20)
    assert site.row(package_id, dp_id)["state"] == "installed"  # type: ignore[index]
    assert again.metric("peerdp_dp_objects_received_total") == 0  # nothing pushed again
    got = get_file(again, package_id, version, "big.bin", site_key(site))
    assert got.content == files["big.bin"]


def test_damaged_content_is_found_reported_resent_and_never_served(
    site: Site, dps: list[DPProcess], tmp_path: Path
) -> None:
    dp_id, dp = new_dp(site, dps, tmp_path)
    files = {"keep.bin": os.urandom(50_000), "harm.bin": os.urandom(50_000)}
    package_id, version = site.package(files)
    site.add(package_id, dp_id)
    site.wait_state(package_id, dp_id, {"installed"})
    key = site_key(site)

    def reports(count: int) -> list[dict[str, Any]]:
        messages = site.messages(package_id=package_id, dp_id=dp_id, type="package_state")
        damaged = [m for m in messages if m["state"] == "content_damaged"]
        found = [m for m in damaged if "harm.bin" in m["detail"]]
        return found if len(found) >= count else []

    # Damaged while running: not served; the DP withdraws the version and reports it, and
    # the site sends just that file again by itself.
    damaged = dp.object_path(sha(files["harm.bin"]))
    os.chmod(damaged, 0o644)
    damaged.write_bytes(b"\0" * 50_000)
    assert get_file(dp, package_id, version, "harm.bin", key).status_code == 404
    [report] = wait_for("the damage report", lambda: reports(1), 20)
    assert "found on read" in report["detail"]
    site.wait_state(package_id, dp_id, {"installed"})
    assert get_file(dp, package_id, version, "harm.bin", key).content == files["harm.bin"]
    assert dp.metric("peerdp_dp_objects_received_total") == 3

    # Damaged while stopped: found at start, deleted, reported and sent again.
    assert dp.stop() == 0
    os.chmod(damaged, 0o644)
    damaged.write_bytes(b"\1" * 50_000)
    again = start_dp(site.server, dp.data_dir)
    dps.append(again)
    report = wait_for("the damage report at start", lambda: reports(2), 20)[-1]
    assert "found at start" in report["detail"]
    served = get_file(again, package_id, version, "harm.bin", key)
    assert served.status_code == 404 or served.content == files["harm.bin"]
    wait_for(
        "the file sent again",
        lambda: get_file(again, package_id, version, "harm.bin", key).status_code == 200,
        30,
    )
    site.wait_state(package_id, dp_id, {"installed"})
    assert get_file(again, package_id, version, "harm.bin", key).content == files["harm.bin"]
    assert get_file(again, package_id, version, "keep.bin", key).content == files["keep.bin"]
    assert again.metric("peerdp_dp_objects_received_total") == 1


def test_a_branch_dp_that_never_reports_retries_then_fails_visibly(site: Site) -> None:
    branch = {"name": unique("br"), "kind": "branch"}
    dp = ok(site.admin.post("/distribution-points", json=branch), 201)
    package_id, _ = site.package({"x": b"x"})
    site.add(package_id, dp["id"])
    row = site.wait_state(package_id, dp["id"], {"install_retrying"}, timeout=10)
    expected = f"no report from branch DP {dp['name']} within {PENDING_DEADLINE_S:g} s"
    assert row["detail"] == expected
    row = site.wait_state(package_id, dp["id"], {"install_failed"}, timeout=20)
    assert row["attempts"] == ATTEMPTS and "gave up" in row["detail"]
    ok(site.admin.delete(f"/packages/{package_id}/distribution-points/{dp['id']}"))
    row = site.wait_state(package_id, dp["id"], {"removal_failed"}, timeout=20)
    messages = site.messages(package_id=package_id, dp_id=dp["id"], type="package_state")
    assert [m["state"] for m in messages].count("removal_retrying") == ATTEMPTS - 1
    assert all(m["detail"] for m in messages)


def test_two_site_servers_never_push_the_same_row_twice(
    tmp_path: Path, dps: list[DPProcess]
) -> None:
    """Two site-server processes on one PostgreSQL database (and one data directory)."""
    with two_site_processes(tmp_path, SITE_ENV) as (first, _second):
        site = Site.of(first)
        dp_id, dp = new_dp(site, dps, tmp_path)
        packages = [site.package({f"f{i}.bin": os.urandom(64_000)})[0] for i in range(8)]
        for package_id in packages:
            site.add(package_id, dp_id)
        for package_id in packages:
            site.wait_state(package_id, dp_id, {"installed"})
        assert dp.metric("peerdp_dp_versions_installed_total") == len(packages)
        assert dp.metric("peerdp_dp_objects_received_total") == len(packages)


def test_a_push_that_installs_a_bits_dp_carries_out_delayed_on_demand_requests(
    server: SiteProcess, site: Site, dps: list[DPProcess], tmp_path: Path
) -> None:
    world = build(server)  # its standard DP is registered at a port nobody listens on
    std_id = world.standard_dp["id"]
    row = site.wait_state(world.package["id"], std_id, {"install_retrying", "install_failed"})
    assert "cannot reach" in row["detail"]
    answer = world.locate(world.client(unique("pc")))
    assert answer["reason"] == "on_demand_delayed"

    # Its registration sends the package again (it had failed only for want of the DP).
    dps.append(start_dp(server, tmp_path / "std", site.token("standard_dp", std_id)))
    site.wait_state(world.package["id"], std_id, {"installed"})
    requests = ok(
        world.admin.get("/on-demand-requests", params={"package_id": world.package["id"]})
    )
    assert [r["state"] for r in requests] == ["provisioned"]
    branch = world.dp_list()[world.branch_dp["id"]]
    assert (branch["state"], branch["origin"]) == ("install_pending", "on_demand")
