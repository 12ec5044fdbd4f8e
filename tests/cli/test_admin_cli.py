"""The admin CLI against a real site server (SQLite and PostgreSQL), as a subprocess.

Each entity is created, read, changed and deleted through `peerdp ... --json` and
checked through the admin API, and the other way round.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.support import Cli, write_files
from tests.helpers.api import unique
from tests.helpers.processes import SiteProcess, peerdp_cmd

pytestmark = pytest.mark.slow  # the admin CLI runs as a process against a real site server


def ok(response: httpx.Response) -> Any:
    assert response.is_success, response.text
    return response.json() if response.content else None


def package_with_content(api: httpx.Client, tmp_path: Path) -> str:
    """A package with source version 1 and a program `Install`, made through the API."""
    package = ok(api.post("/packages", json={"name": unique("pkg"), "on_demand": True}))
    write_files(tmp_path / "src", {"setup.cmd": secrets.token_bytes(64)})
    cli_tar = subprocess.run(
        ["tar", "-C", str(tmp_path / "src"), "-cf", "-", "."], capture_output=True, check=True
    ).stdout
    headers = {"Content-Type": "application/x-tar"}
    ok(api.post(f"/packages/{package['id']}/versions", content=cli_tar, headers=headers))
    program = {"name": "Install", "command_line": "setup.cmd /q"}
    ok(api.post(f"/packages/{package['id']}/programs", json=program))
    return str(package["id"])


# -- boundaries and distribution points ---------------------------------------------------


def test_boundary_lifecycle(cli: Cli, api: httpx.Client) -> None:
    name = unique("branch-net")
    made = cli.json("boundary", "add", name, "--type", "ip_subnet", "--value", "10.9.0.0/16")
    assert ok(api.get(f"/boundaries/{made['id']}"))["value"] == "10.9.0.0/16"
    assert made["connection"] == "fast"

    changed = cli.json("boundary", "set", str(made["id"]), "--connection", "slow")
    assert changed["name"] == name
    assert ok(api.get(f"/boundaries/{made['id']}"))["connection"] == "slow"

    assert made["id"] in [b["id"] for b in cli.json("boundary", "list")]
    assert name in cli.ok("boundary", "list")  # the table

    cli.json("boundary", "delete", str(made["id"]))
    assert api.get(f"/boundaries/{made['id']}").status_code == 404


def test_boundary_made_through_the_api_shows_in_the_cli(cli: Cli, api: httpx.Client) -> None:
    body = {"name": unique("site"), "type": "ad_site", "value": "BRANCH-07", "connection": "slow"}
    made = ok(api.post("/boundaries", json=body))
    assert cli.json("boundary", "show", str(made["id"])) == made
    table = cli.ok("boundary", "show", str(made["id"]))
    assert "BRANCH-07" in table and "slow" in table


def test_boundary_errors_are_one_line(cli: Cli) -> None:
    assert "does not exist" in cli.fails("boundary", "show", "999999")
    assert "nothing to change" in cli.fails("boundary", "set", "1")
    bad = cli.fails(
        "boundary", "add", unique("b"), "--type", "ip_subnet", "--value", "10.0.0.300/8"
    )
    assert bad.count("\n") == 1


def test_distribution_point_lifecycle(cli: Cli, api: httpx.Client) -> None:
    boundary = ok(
        api.post(
            "/boundaries", json={"name": unique("b"), "type": "ip_subnet", "value": "10.7.0.0/24"}
        )
    )
    name = unique("branch-dp")
    made = cli.json(
        "dp", "add", name, "--kind", "branch", "--no-bits", "--protect", str(boundary["id"]),
        "--ip-address", "10.7.0.5", "--ad-site", "BRANCH-07", "--max-transfers", "5",
    )  # fmt: skip
    stored = ok(api.get(f"/distribution-points/{made['id']}"))
    assert stored["kind"] == "branch" and stored["bits_enabled"] is False
    assert stored["protected"] is True and stored["protected_boundary_ids"] == [boundary["id"]]
    assert stored["ip_addresses"] == ["10.7.0.5"] and stored["max_transfers"] == 5

    changed = cli.json(
        "dp", "set", str(made["id"]), "--unprotect", "--bits", "--url", "http://dp:8081"
    )
    assert changed["protected"] is False and changed["bits_enabled"] is True
    assert ok(api.get(f"/distribution-points/{made['id']}"))["url"] == "http://dp:8081"
    assert name in [d["name"] for d in cli.json("dp", "list")]
    # What is in force: the site's setting, else the kind's default (a branch DP: 10).
    shown = cli.json("dp", "show", str(made["id"]))
    assert (shown["max_transfers"], shown["max_transfers_in_force"]) == (5, 5)
    assert "in force  5" in cli.ok("dp", "show", str(made["id"]))
    cleared = cli.json("dp", "set", str(made["id"]), "--no-max-transfers")
    assert (cleared["max_transfers"], cleared["max_transfers_in_force"]) == (None, 10)

    cli.json("dp", "delete", str(made["id"]))
    assert api.get(f"/distribution-points/{made['id']}").status_code == 404


# -- packages, versions, programs and DP lists ---------------------------------------------


def test_package_import_and_update(cli: Cli, api: httpx.Client, tmp_path: Path) -> None:
    folder = write_files(
        tmp_path / "app",
        {
            "setup.exe": secrets.token_bytes(70_000),
            "data/config.ini": secrets.token_bytes(100),
            "data/empty.txt": b"",
        },
    )
    name = unique("office")
    first = cli.json("package", "import", name, str(folder), "--on-demand")
    package_id = first["package"]["id"]
    assert first["package"]["name"] == name and first["package"]["on_demand"] is True
    assert first["package"]["source_version"] == 1
    assert first["version"]["file_count"] == 3 and first["version"]["new_files"] >= 2
    manifest = ok(api.get(f"/packages/{package_id}/versions/1/manifest"))
    assert [f["path"] for f in manifest["files"]] == [
        "data/config.ini",
        "data/empty.txt",
        "setup.exe",
    ]

    (folder / "data/config.ini").write_bytes(secrets.token_bytes(100))
    second = cli.json("package", "update", package_id, str(folder))
    assert second["source_version"] == 2 and second["new_files"] == 1
    assert ok(api.get(f"/packages/{package_id}"))["source_version"] == 2
    assert [v["source_version"] for v in cli.json("package", "versions", package_id)] == [1, 2]
    assert cli.json("package", "manifest", package_id, "2") == ok(
        api.get(f"/packages/{package_id}/versions/2/manifest")
    )
    # The same folder again is no new version (exit 0), unless --force.
    human = cli.ok("package", "update", package_id, str(folder))
    assert "unchanged" in human and "identical to source version 2" in human
    unchanged = cli.json("package", "update", package_id, str(folder))
    assert (unchanged["changed"], unchanged["source_version"]) == (False, 2)
    assert [v["source_version"] for v in cli.json("package", "versions", package_id)] == [1, 2]
    forced = cli.ok("package", "update", package_id, str(folder), "--force")
    assert "source version 3" in forced and "0 files" in forced

    again = cli.json("package", "import", unique("copy"), str(folder))
    assert again["version"]["new_files"] == 0 and again["version"]["file_count"] == 3


def test_package_settings_and_delete(cli: Cli, api: httpx.Client) -> None:
    made = cli.json("package", "create", unique("empty"), "--no-auto-download")
    assert made["source_version"] == 0 and made["auto_download_branch"] is False
    changed = cli.json("package", "set", made["id"], "--on-demand", "--auto-download")
    assert changed["on_demand"] is True and changed["auto_download_branch"] is True
    assert ok(api.get(f"/packages/{made['id']}"))["on_demand"] is True
    # On-demand distribution needs automatic download, whichever comes first (one line).
    for args in (
        ("set", made["id"], "--no-auto-download"),
        ("create", unique("both"), "--on-demand", "--no-auto-download"),
    ):
        refused = cli.fails("package", *args)
        assert "on-demand distribution needs automatic download" in refused
        assert refused.count("\n") == 1, refused
    assert ok(api.get(f"/packages/{made['id']}"))["auto_download_branch"] is True
    assert cli.json("package", "show", made["id"])["name"] == made["name"]
    assert made["id"] in [p["id"] for p in cli.json("package", "list")]
    cli.json("package", "delete", made["id"])
    assert api.get(f"/packages/{made['id']}").status_code == 404


def test_package_folder_with_symlink_is_refused(
    cli: Cli, api: httpx.Client, tmp_path: Path
) -> None:
    folder = write_files(tmp_path / "linked", {"real.txt": b"content"})
    (folder / "link.txt").symlink_to(folder / "real.txt")
    name = unique("linked")
    message = cli.fails("package", "import", name, str(folder))
    assert "symlink not allowed" in message and "link.txt" in message
    assert name not in [p["name"] for p in ok(api.get("/packages"))]
    assert "not a directory" in cli.fails("package", "update", "PS100001", str(tmp_path / "nope"))


def test_program_lifecycle(cli: Cli, api: httpx.Client) -> None:
    package = ok(api.post("/packages", json={"name": unique("pkg")}))
    pid = package["id"]
    made = cli.json("program", "add", pid, "Install", "--command-line", "setup.exe /q")
    assert made["timeout_s"] == 3600
    assert ok(api.get(f"/packages/{pid}/programs/Install"))["command_line"] == "setup.exe /q"
    cli.json("program", "set", pid, "Install", "--timeout", "600")
    assert ok(api.get(f"/packages/{pid}/programs/Install"))["timeout_s"] == 600
    assert made["success_exit_codes"] == []
    codes = ("--success-code", "17", "--success-code", "1618")
    cli.json("program", "set", pid, "Install", *codes)
    assert ok(api.get(f"/packages/{pid}/programs/Install"))["success_exit_codes"] == [17, 1618]
    cli.json("program", "set", pid, "Install", "--no-success-codes")
    assert ok(api.get(f"/packages/{pid}/programs/Install"))["success_exit_codes"] == []
    ok(api.post(f"/packages/{pid}/programs", json={"name": "Repair Me", "command_line": "r"}))
    programs = cli.json("program", "list", pid)
    assert [(p["name"], p["command_line"]) for p in programs] == [
        ("Install", "setup.exe /q"),
        ("Repair Me", "r"),
    ]
    cli.json("program", "delete", pid, "Repair Me")
    assert api.get(f"/packages/{pid}/programs/Repair Me").status_code == 404


def test_package_dp_list(cli: Cli, api: httpx.Client, tmp_path: Path) -> None:
    package_id = package_with_content(api, tmp_path)
    # A branch DP: it pulls through its policy, so nothing moves the row on meanwhile.
    dp = ok(api.post("/distribution-points", json={"name": unique("dp"), "kind": "branch"}))
    row = cli.json("package", "dp", "add", package_id, str(dp["id"]))
    assert row["state"] == "install_pending" and row["origin"] == "admin"
    assert row["source_version"] == 1
    rows = ok(api.get(f"/packages/{package_id}/distribution-points"))
    assert [(r["dp_id"], r["state"]) for r in rows] == [(dp["id"], "install_pending")]
    assert cli.json("package", "dp", "list", package_id) == rows
    table = cli.ok("package", "dp", "list", package_id)
    assert dp["name"] in table and "install_pending" in table and "admin" in table

    refused = cli.fails("package", "dp", "refresh", package_id, str(dp["id"]))
    assert "only an installed" in refused

    removed = cli.json("package", "dp", "remove", package_id, str(dp["id"]))
    assert removed["state"] == "removal_pending"
    assert "already under way" in cli.fails("package", "dp", "remove", package_id, str(dp["id"]))


# -- collections, advertisements, tokens -----------------------------------------------------


def test_collection_lifecycle(cli: Cli, api: httpx.Client) -> None:
    made = cli.json("collection", "add", unique("pilot"), "--member", "PC-02", "--member", "PC-01")
    cid = str(made["id"])
    assert ok(api.get(f"/collections/{cid}"))["member_names"] == ["PC-01", "PC-02"]
    grown = cli.json("collection", "add-members", cid, "PC-03", "PC-01")
    assert grown["member_names"] == ["PC-01", "PC-02", "PC-03"]
    shrunk = cli.json("collection", "remove-member", cid, "PC-02")
    assert (
        ok(api.get(f"/collections/{cid}"))["member_names"]
        == ["PC-01", "PC-03"]
        == shrunk["member_names"]
    )
    replaced = cli.json("collection", "set", cid, "--name", made["name"] + "-2", "--member", "PC-9")
    assert replaced["name"] == made["name"] + "-2" and replaced["member_names"] == ["PC-9"]
    assert "PC-9" in cli.ok("collection", "show", cid)
    assert "not a member" in cli.fails("collection", "remove-member", cid, "PC-77")
    cli.json("collection", "delete", cid)
    assert api.get(f"/collections/{cid}").status_code == 404


def test_advertisement_lifecycle(cli: Cli, api: httpx.Client, tmp_path: Path) -> None:
    package_id = package_with_content(api, tmp_path)
    collection = ok(api.post("/collections", json={"name": unique("all"), "member_names": []}))
    made = cli.json(
        "advertisement", "add", unique("deploy"), "--package", package_id, "--program", "Install",
        "--collection", str(collection["id"]), "--protected-only", "--mandatory-at", "2h",
        "--on-slow", "download", "--allow-remote",
    )  # fmt: skip
    stored = ok(api.get(f"/advertisements/{made['id']}"))
    assert stored["protected_only"] is True and stored["allow_remote"] is True
    assert stored["on_slow"] == "download" and stored["mandatory_at"] is not None
    assert stored["mandatory_at"] > stored["available_at"]

    changed = cli.json(
        "advertisement", "set", str(made["id"]), "--not-mandatory", "--not-protected-only"
    )
    assert changed["mandatory_at"] is None and changed["protected_only"] is False
    assert changed["program_name"] == "Install"
    assert made["id"] in [a["id"] for a in cli.json("advertisement", "list")]
    assert "no program named" in cli.fails(
        "advertisement", "set", str(made["id"]), "--program", "Nope"
    )
    rerun = cli.json("advertisement", "rerun", str(made["id"]))
    assert (rerun["advertisement_id"], rerun["client_name"]) == (made["id"], None)
    assert "is not a member of collection" in cli.fails(
        "advertisement", "rerun", str(made["id"]), "--client", "NOBODY"
    )
    cli.json("advertisement", "delete", str(made["id"]))
    assert api.get(f"/advertisements/{made['id']}").status_code == 404


def test_enrolment_tokens(cli: Cli, api: httpx.Client) -> None:
    made = cli.json("token", "create", "--role", "client", "--uses", "3", "--expires-in", "2d")
    assert made["token"].startswith("pde_") and made["max_uses"] == 3
    assert made["expires_at"] is not None
    listed = cli.json("token", "list")
    assert made["id"] in [t["id"] for t in listed]
    assert all("token" not in t for t in listed)
    dp = ok(api.post("/distribution-points", json={"name": unique("br"), "kind": "branch"}))
    branch = cli.json("token", "create", "--role", "branch_dp", "--dp", str(dp["id"]))
    assert branch["dp_id"] == dp["id"]
    human = cli.ok("token", "create", "--role", "client")
    assert "pde_" in human and "only this once" in human

    cli.json("token", "revoke", str(made["id"]))
    assert api.get(f"/enrolment-tokens/{made['id']}").status_code == 404


# -- what happened: clients, on-demand requests, status messages ---------------------------


def test_registered_client(cli: Cli, api: httpx.Client, site_server: SiteProcess) -> None:
    token = cli.json("token", "create", "--role", "client")["token"]
    name = unique("PC")
    facts = {"token": token, "name": name, "ip_addresses": ["10.3.0.7"], "ad_site": "B3"}
    registered = ok(httpx.post(site_server.url + "/mp/v1/register", json=facts, timeout=30))
    client_id = str(registered["client_id"])

    listed = {c["name"]: c for c in cli.json("client", "list")}
    assert listed[name]["ip_addresses"] == ["10.3.0.7"]
    assert cli.json("client", "show", client_id) == ok(api.get(f"/clients/{client_id}"))
    assert name in cli.ok("client", "list")
    cli.json("client", "delete", client_id)
    assert api.get(f"/clients/{client_id}").status_code == 404
    assert "does not exist" in cli.fails("client", "show", client_id)


def test_on_demand_list(cli: Cli, api: httpx.Client) -> None:
    assert cli.json("on-demand", "list", "--state", "delayed") == ok(
        api.get("/on-demand-requests", params={"state": "delayed"})
    )
    assert "No on-demand requests" in cli.ok("on-demand", "list", "--package", "PS1FFFFF")


def test_status_list_and_follow(cli: Cli, api: httpx.Client, tmp_path: Path) -> None:
    package_id = package_with_content(api, tmp_path)
    messages = cli.json("status", "list", "--package", package_id, "--since", "1h")
    assert "package_version_created" in [m["type"] for m in messages]
    assert all(m["package_id"] == package_id for m in messages)
    assert "package_version_created" in cli.ok("status", "list", "--package", package_id)

    args = ("--package", package_id, "--follow", "--json", "--interval", "0.2")
    follower = subprocess.Popen(
        peerdp_cmd("status", "list", *args),
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    next_line = _line_reader(follower)
    try:
        assert [next_line()["id"] for _ in messages] == [m["id"] for m in messages]
        dp = ok(api.post("/distribution-points", json={"name": unique("dp"), "kind": "branch"}))
        ok(api.post(f"/packages/{package_id}/distribution-points", json={"dp_id": dp["id"]}))
        added = next_line()
        assert added["type"] == "dp_added_to_package" and added["dp_id"] == dp["id"]
    finally:
        follower.send_signal(signal.SIGINT)
        _, err = follower.communicate(timeout=20)
    assert follower.returncode == 0 and "Traceback" not in err


def _line_reader(process: subprocess.Popen[str]) -> Callable[[], Any]:
    """Read the process's stdout on a thread; the function returns the next JSON line."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()

    def next_line() -> Any:
        try:
            return json.loads(lines.get(timeout=30))
        except queue.Empty:
            raise AssertionError("no new status message printed") from None

    return next_line


# -- credentials and reachability ---------------------------------------------------------------


def test_wrong_or_missing_admin_token(cli: Cli) -> None:
    wrong = cli.fails("boundary", "list", PEERDP_ADMIN_TOKEN="not-the-token")
    assert "admin token" in wrong and "PEERDP_ADMIN_TOKEN" in wrong
    missing = cli.fails("package", "list", PEERDP_ADMIN_TOKEN="")
    assert "no admin token" in missing


def test_site_option_overrides_the_environment(cli: Cli, site_server: SiteProcess) -> None:
    rows = cli.json("boundary", "list", "--site", site_server.url + "/", PEERDP_SITE_URL="x")
    assert isinstance(rows, list)


def test_server_down_is_a_clear_message() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    message = Cli(dict(os.environ)).fails(
        "boundary", "list", PEERDP_SITE_URL=url, PEERDP_ADMIN_TOKEN="t"
    )
    assert f"cannot connect to the site server at {url}" in message
    assert "PEERDP_SITE_URL" in message


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_help_in_a_real_process() -> None:
    shown = Cli(dict(os.environ)).ok("--help", COLUMNS="120")
    for group in ("boundary", "dp", "package", "program", "collection", "advertisement"):
        assert group in shown
    for group in ("token", "client", "on-demand", "status"):
        assert group in shown
