"""The admin REST API against a real `peerdp site serve`, on SQLite and PostgreSQL.

Every resource of the admin API is created, read, changed and deleted; package content is
uploaded as a tar body and stored once per distinct file in the content library.
"""

from __future__ import annotations

import hashlib
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from peerdp.domain.timestamps import rfc3339
from peerdp.store.db import make_engine
from tests.helpers.api import unique
from tests.helpers.processes import SiteProcess

from .admin_support import (
    env_without_token,
    launch,
    library_objects,
    make_tar,
    new_package,
    ok,
    port_is_free,
    unique_files,
    upload,
)

pytestmark = pytest.mark.slow  # real site-server processes

PACKAGE_ID = re.compile(r"^PS1[0-9A-F]{5}$")


@pytest.fixture
def admin(site_server: SiteProcess) -> httpx.Client:
    return site_server.admin()


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def ids(rows: list[dict[str, Any]]) -> list[Any]:
    return [row["id"] for row in rows]


def package_with_content(admin: httpx.Client, **fields: Any) -> dict[str, Any]:
    package = new_package(admin, unique("pkg"), **fields)
    ok(upload(admin, package["id"], make_tar(unique_files())), 201)
    return ok(admin.get(f"/packages/{package['id']}"))  # type: ignore[no-any-return]


# -- boundaries ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        ("ip_subnet", "10.77.0.0/16"),
        ("ip_subnet", "fd00:77::/64"),
        ("ip_range", "10.78.0.1-10.78.0.200"),
        ("ip_range", "fd00:78::1-fd00:78::ff"),
        ("ad_site", "BRANCH-77"),
    ],
)
def test_boundary_create_read_change_delete(admin: httpx.Client, type_: str, value: str) -> None:
    name = unique("bnd")
    created = ok(
        admin.post(
            "/boundaries", json={"name": name, "type": type_, "value": value, "connection": "fast"}
        ),
        201,
    )
    assert {k: created[k] for k in ("name", "type", "value", "connection")} == {
        "name": name,
        "type": type_,
        "value": value,
        "connection": "fast",
    }
    assert ok(admin.get(f"/boundaries/{created['id']}")) == created
    assert created in ok(admin.get("/boundaries"))

    # A PATCH changes what it names and nothing else.
    changed = ok(admin.patch(f"/boundaries/{created['id']}", json={"connection": "slow"}))
    assert changed == {**created, "connection": "slow"}
    renamed = ok(admin.patch(f"/boundaries/{created['id']}", json={"name": name + "-x"}))
    assert renamed == {**changed, "name": name + "-x"}
    assert ok(admin.get(f"/boundaries/{created['id']}")) == renamed

    assert admin.delete(f"/boundaries/{created['id']}").status_code == 204
    assert admin.get(f"/boundaries/{created['id']}").status_code == 404
    assert created["id"] not in ids(ok(admin.get("/boundaries")))


def test_boundary_connection_defaults_to_fast(admin: httpx.Client) -> None:
    body = {"name": unique("bnd"), "type": "ad_site", "value": "HQ"}
    assert ok(admin.post("/boundaries", json=body), 201)["connection"] == "fast"


def test_boundary_value_change_is_checked_and_kept(admin: httpx.Client) -> None:
    body = {"name": unique("bnd"), "type": "ip_subnet", "value": "10.79.0.0/16"}
    created = ok(admin.post("/boundaries", json=body), 201)
    patch = {"type": "ip_range", "value": "10.79.0.1-10.79.0.9"}
    changed = ok(admin.patch(f"/boundaries/{created['id']}", json=patch))
    assert (changed["type"], changed["value"]) == ("ip_range", "10.79.0.1-10.79.0.9")


# -- distribution points ------------------------------------------------------------


def new_boundary(admin: httpx.Client, value: str = "10.80.0.0/16") -> dict[str, Any]:
    body = {"name": unique("bnd"), "type": "ip_subnet", "value": value}
    return ok(admin.post("/boundaries", json=body), 201)  # type: ignore[no-any-return]


def test_distribution_point_create_read_change_delete(admin: httpx.Client) -> None:
    b1, b2 = new_boundary(admin), new_boundary(admin, "fd00:80::/64")
    name = unique("branch")
    body = {
        "name": name,
        "kind": "branch",
        "bits_enabled": False,
        "protected_boundary_ids": [b2["id"], b1["id"]],
    }
    dp = ok(admin.post("/distribution-points", json=body), 201)
    assert (dp["name"], dp["kind"], dp["bits_enabled"]) == (name, "branch", False)
    assert dp["protected"] is True
    assert dp["protected_boundary_ids"] == sorted([b1["id"], b2["id"]])
    assert dp["url"] is None
    assert dp["site_code"] == "PS1"
    assert ok(admin.get(f"/distribution-points/{dp['id']}")) == dp
    assert dp in ok(admin.get("/distribution-points"))

    one = ok(
        admin.patch(f"/distribution-points/{dp['id']}", json={"protected_boundary_ids": [b1["id"]]})
    )
    assert (one["protected_boundary_ids"], one["protected"]) == ([b1["id"]], True)
    assert one["bits_enabled"] is False and one["name"] == name

    none = ok(admin.patch(f"/distribution-points/{dp['id']}", json={"protected_boundary_ids": []}))
    assert (none["protected_boundary_ids"], none["protected"]) == ([], False)
    # Once no DP protects it, the boundary may go.
    assert admin.delete(f"/boundaries/{b2['id']}").status_code == 204

    bits = ok(admin.patch(f"/distribution-points/{dp['id']}", json={"bits_enabled": True}))
    assert bits == {**none, "bits_enabled": True}

    assert admin.delete(f"/distribution-points/{dp['id']}").status_code == 204
    assert admin.get(f"/distribution-points/{dp['id']}").status_code == 404
    assert dp["id"] not in ids(ok(admin.get("/distribution-points")))
    # Deleting the DP released its protected boundary too.
    assert admin.delete(f"/boundaries/{b1['id']}").status_code == 204


def test_standard_distribution_point_with_url(admin: httpx.Client) -> None:
    body = {"name": unique("std"), "kind": "standard", "url": "http://dp1.example:8081"}
    dp = ok(admin.post("/distribution-points", json=body), 201)
    assert (dp["kind"], dp["url"], dp["protected"], dp["bits_enabled"]) == (
        "standard",
        "http://dp1.example:8081",
        False,
        True,
    )
    assert dp["protected_boundary_ids"] == []


# -- packages -----------------------------------------------------------------------


def test_package_ids_are_site_code_and_growing_hex(admin: httpx.Client) -> None:
    first = new_package(admin, unique("pkg"))
    second = new_package(admin, unique("pkg"))
    assert PACKAGE_ID.match(first["id"]) and PACKAGE_ID.match(second["id"])
    assert int(second["id"][3:], 16) > int(first["id"][3:], 16)
    assert (first["source_version"], first["on_demand"], first["auto_download_branch"]) == (
        0,
        False,
        True,
    )


def test_a_deleted_package_id_is_never_given_again(admin: httpx.Client) -> None:
    first = new_package(admin, unique("pkg"))
    newest = new_package(admin, unique("pkg"))
    assert admin.delete(f"/packages/{newest['id']}").status_code == 204
    after = new_package(admin, unique("pkg"))
    assert int(after["id"][3:], 16) > int(newest["id"][3:], 16) > int(first["id"][3:], 16)
    logged = ok(admin.get("/status-messages", params={"package_id": newest["id"]}))
    assert [m["type"] for m in logged] == ["package_deleted"]


def test_package_create_read_change_delete(admin: httpx.Client) -> None:
    name = unique("pkg")
    package = new_package(admin, name, on_demand=True)
    assert (package["name"], package["on_demand"], package["auto_download_branch"]) == (
        name,
        True,
        True,
    )
    assert ok(admin.get(f"/packages/{package['id']}")) == package
    assert package in ok(admin.get("/packages"))

    body = {"on_demand": False, "auto_download_branch": False}
    changed = ok(admin.patch(f"/packages/{package['id']}", json=body))
    assert (changed["on_demand"], changed["auto_download_branch"], changed["name"]) == (
        False,
        False,
        name,
    )
    renamed = ok(admin.patch(f"/packages/{package['id']}", json={"name": name + "-2"}))
    assert (renamed["name"], renamed["on_demand"]) == (name + "-2", False)
    assert ok(admin.get(f"/packages/{package['id']}"))["name"] == name + "-2"

    assert admin.delete(f"/packages/{package['id']}").status_code == 204
    assert admin.get(f"/packages/{package['id']}").status_code == 404
    assert package["id"] not in ids(ok(admin.get("/packages")))


def test_upload_creates_version_with_manifest(
    admin: httpx.Client, site_server: SiteProcess
) -> None:
    files = unique_files(3)
    package = new_package(admin, unique("pkg"))
    before = library_objects(site_server.data_dir)

    version = ok(upload(admin, package["id"], make_tar(files)), 201)

    assert (version["package_id"], version["source_version"]) == (package["id"], 1)
    assert version["file_count"] == 3
    assert version["total_size"] == sum(len(c) for c in files.values())
    assert (version["new_files"], version["new_bytes"]) == (3, version["total_size"])
    manifest = version["manifest"]
    assert (manifest["package_id"], manifest["source_version"]) == (package["id"], 1)
    assert {f["path"]: (f["size"], f["sha256"]) for f in manifest["files"]} == {
        path: (len(content), hashlib.sha256(content).hexdigest()) for path, content in files.items()
    }
    digests = {hashlib.sha256(c).hexdigest() for c in files.values()}
    assert library_objects(site_server.data_dir) - before == digests

    assert ok(admin.get(f"/packages/{package['id']}"))["source_version"] == 1
    [listed] = ok(admin.get(f"/packages/{package['id']}/versions"))
    assert (listed["source_version"], listed["file_count"]) == (1, 3)
    assert listed["manifest_digest"] == version["manifest_digest"]
    assert ok(admin.get(f"/packages/{package['id']}/versions/1/manifest")) == manifest
    messages = ok(admin.get("/status-messages", params={"package_id": package["id"]}))
    assert "package_version_created" in [m["type"] for m in messages]


def test_same_content_in_two_packages_is_stored_once(
    admin: httpx.Client, site_server: SiteProcess
) -> None:
    body = make_tar(unique_files(4))
    first, second = new_package(admin, unique("pkg")), new_package(admin, unique("pkg"))
    before = library_objects(site_server.data_dir)

    one = ok(upload(admin, first["id"], body), 201)
    after_first = library_objects(site_server.data_dir)
    two = ok(upload(admin, second["id"], body), 201)
    after_second = library_objects(site_server.data_dir)

    assert (one["new_files"], one["file_count"]) == (4, 4)
    assert (two["new_files"], two["new_bytes"], two["file_count"]) == (0, 0, 4)
    assert len(after_first - before) == 4
    assert after_second == after_first
    assert [f["sha256"] for f in one["manifest"]["files"]] == [
        f["sha256"] for f in two["manifest"]["files"]
    ]


def test_update_with_one_changed_file_stores_one_new_object(
    admin: httpx.Client, site_server: SiteProcess
) -> None:
    files = unique_files(3)
    package = new_package(admin, unique("pkg"))
    ok(upload(admin, package["id"], make_tar(files)), 201)
    before = library_objects(site_server.data_dir)

    changed = {**files, "setup.cmd": files["setup.cmd"] + b"rem v2\n"}
    update = ok(upload(admin, package["id"], make_tar(changed)), 201)

    assert update["source_version"] == 2
    assert (update["new_files"], update["new_bytes"]) == (1, len(changed["setup.cmd"]))
    assert library_objects(site_server.data_dir) - before == {
        hashlib.sha256(changed["setup.cmd"]).hexdigest()
    }
    assert ok(admin.get(f"/packages/{package['id']}"))["source_version"] == 2
    versions = ok(admin.get(f"/packages/{package['id']}/versions"))
    assert [v["source_version"] for v in versions] == [1, 2]
    # Version 1 is still there as it was.
    v1 = ok(admin.get(f"/packages/{package['id']}/versions/1/manifest"))
    setup = next(f for f in v1["files"] if f["path"] == "setup.cmd")
    assert setup["sha256"] == hashlib.sha256(files["setup.cmd"]).hexdigest()


def test_update_with_unchanged_content_makes_no_version_unless_forced(
    admin: httpx.Client,
) -> None:
    files = unique_files(3)
    package = new_package(admin, unique("pkg"))
    first = ok(upload(admin, package["id"], make_tar(files)), 201)
    dp = ok(admin.post("/distribution-points", json={"name": unique("dp"), "kind": "branch"}), 201)
    ok(admin.post(f"/packages/{package['id']}/distribution-points", json={"dp_id": dp["id"]}), 201)
    before = ok(admin.get(f"/packages/{package['id']}/distribution-points"))

    # The same files in another order in the archive are the same content.
    reordered = dict(reversed(list(files.items())))
    same = ok(upload(admin, package["id"], make_tar(reordered)), 200)

    assert same["changed"] is False and "identical to source version 1" in same["detail"]
    assert (same["source_version"], same["new_files"]) == (1, 0)
    assert same["manifest_digest"] == first["manifest_digest"]
    assert ok(admin.get(f"/packages/{package['id']}"))["source_version"] == 1
    assert [v["source_version"] for v in ok(admin.get(f"/packages/{package['id']}/versions"))] == [
        1
    ]
    # No DP is sent anything again.
    assert ok(admin.get(f"/packages/{package['id']}/distribution-points")) == before
    messages = ok(admin.get("/status-messages", params={"package_id": package["id"]}))
    assert "package_version_unchanged" in [m["type"] for m in messages]

    forced = ok(
        admin.post(
            f"/packages/{package['id']}/versions",
            params={"force": "true"},
            content=make_tar(files),
            headers={"Content-Type": "application/x-tar"},
        ),
        201,
    )
    assert (forced["source_version"], forced["changed"]) == (2, True)
    [row] = ok(admin.get(f"/packages/{package['id']}/distribution-points"))
    assert (row["state"], row["source_version"]) == ("install_pending", 2)

    # Unchanged means unchanged from the current version: going back to v1's content after
    # a real change is a change.
    ok(upload(admin, package["id"], make_tar({**files, "extra.txt": b"x"})), 201)
    back = ok(upload(admin, package["id"], make_tar(files)), 201)
    assert (back["source_version"], back["changed"]) == (4, True)


# -- programs -----------------------------------------------------------------------


def test_program_create_read_change_delete(admin: httpx.Client) -> None:
    package = new_package(admin, unique("pkg"))
    base = f"/packages/{package['id']}/programs"
    body = {"name": "Install", "command_line": "setup.cmd /quiet", "timeout_s": 600}
    program = ok(admin.post(base, json=body), 201)
    assert {k: program[k] for k in ("name", "command_line", "timeout_s", "package_id")} == {
        **body,
        "package_id": package["id"],
    }
    assert ok(admin.get(f"{base}/Install")) == program
    assert ok(admin.get(base)) == [program]

    changed = ok(admin.patch(f"{base}/Install", json={"timeout_s": 60}))
    assert changed == {**program, "timeout_s": 60}
    changed = ok(admin.patch(f"{base}/Install", json={"command_line": "setup.cmd /s"}))
    assert changed == {**program, "timeout_s": 60, "command_line": "setup.cmd /s"}

    assert admin.delete(f"{base}/Install").status_code == 204
    assert admin.get(f"{base}/Install").status_code == 404
    assert ok(admin.get(base)) == []


# -- collections --------------------------------------------------------------------


def test_collection_create_read_change_delete(admin: httpx.Client) -> None:
    name = unique("col")
    collection = ok(
        admin.post("/collections", json={"name": name, "member_names": ["PC-2", "PC-1", "PC-1"]}),
        201,
    )
    assert (collection["name"], collection["member_names"]) == (name, ["PC-1", "PC-2"])
    assert ok(admin.get(f"/collections/{collection['id']}")) == collection
    assert collection in ok(admin.get("/collections"))

    cid = collection["id"]
    added = ok(admin.post(f"/collections/{cid}/members", json={"member_names": ["PC-3", "PC-1"]}))
    assert added["member_names"] == ["PC-1", "PC-2", "PC-3"]
    removed = ok(admin.delete(f"/collections/{cid}/members/PC-2"))
    assert removed["member_names"] == ["PC-1", "PC-3"]

    renamed = ok(admin.patch(f"/collections/{cid}", json={"name": name + "-x"}))
    assert (renamed["name"], renamed["member_names"]) == (name + "-x", ["PC-1", "PC-3"])
    replaced = ok(admin.patch(f"/collections/{cid}", json={"member_names": ["PC-9"]}))
    assert (replaced["name"], replaced["member_names"]) == (name + "-x", ["PC-9"])
    assert ok(admin.get(f"/collections/{cid}"))["member_names"] == ["PC-9"]

    assert admin.delete(f"/collections/{cid}").status_code == 204
    assert admin.get(f"/collections/{cid}").status_code == 404
    assert cid not in ids(ok(admin.get("/collections")))


# -- advertisements -----------------------------------------------------------------


def advertisement_parts(admin: httpx.Client) -> tuple[dict[str, Any], dict[str, Any]]:
    package = new_package(admin, unique("pkg"), on_demand=True)
    program = {"name": "Install", "command_line": "setup.cmd"}
    ok(admin.post(f"/packages/{package['id']}/programs", json=program), 201)
    collection = ok(admin.post("/collections", json={"name": unique("col")}), 201)
    return package, collection


def test_advertisement_create_read_change_delete(admin: httpx.Client) -> None:
    package, collection = advertisement_parts(admin)
    available = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    body = {
        "name": unique("adv"),
        "package_id": package["id"],
        "program_name": "Install",
        "collection_id": collection["id"],
        "available_at": rfc3339(available),
        "mandatory_at": rfc3339(available + timedelta(days=1)),
        "protected_only": True,
        "on_fast": "download",
        "on_slow": "download",
        "allow_remote": False,
    }
    adv = ok(admin.post("/advertisements", json=body), 201)
    for key in ("name", "package_id", "program_name", "collection_id", "protected_only"):
        assert adv[key] == body[key], key
    assert (adv["on_fast"], adv["on_slow"], adv["allow_remote"]) == ("download", "download", False)
    assert parse_time(adv["available_at"]) == available
    assert parse_time(adv["mandatory_at"]) == available + timedelta(days=1)
    assert ok(admin.get(f"/advertisements/{adv['id']}")) == adv
    assert adv in ok(admin.get("/advertisements"))

    changed = ok(
        admin.patch(
            f"/advertisements/{adv['id']}",
            json={"allow_remote": True, "on_slow": "do_not_run", "protected_only": False},
        )
    )
    assert changed == {
        **adv,
        "allow_remote": True,
        "on_slow": "do_not_run",
        "protected_only": False,
    }
    optional = ok(admin.patch(f"/advertisements/{adv['id']}", json={"mandatory_at": None}))
    assert optional == {**changed, "mandatory_at": None}

    assert admin.delete(f"/advertisements/{adv['id']}").status_code == 204
    assert admin.get(f"/advertisements/{adv['id']}").status_code == 404
    assert adv["id"] not in ids(ok(admin.get("/advertisements")))


def test_advertisement_defaults(admin: httpx.Client) -> None:
    package, collection = advertisement_parts(admin)
    body = {
        "name": unique("adv"),
        "package_id": package["id"],
        "program_name": "Install",
        "collection_id": collection["id"],
    }
    before = datetime.now(UTC) - timedelta(seconds=5)
    adv = ok(admin.post("/advertisements", json=body), 201)
    assert parse_time(adv["available_at"]) >= before
    assert adv["mandatory_at"] is None
    assert (adv["protected_only"], adv["on_fast"], adv["on_slow"], adv["allow_remote"]) == (
        False,
        "download",
        "do_not_run",
        False,
    )


# -- enrolment tokens ---------------------------------------------------------------


def stored_token_rows(site: SiteProcess) -> list[dict[str, Any]]:
    engine = make_engine(site.db_url, pool=False)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text("SELECT * FROM enrolment_tokens"))]
    finally:
        engine.dispose()


def test_enrolment_token_shown_once_and_only_its_hash_stored(
    admin: httpx.Client, site_server: SiteProcess
) -> None:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    created = ok(
        admin.post(
            "/enrolment-tokens",
            json={"role": "client", "max_uses": 50, "expires_at": rfc3339(expires)},
        ),
        201,
    )
    token = created["token"]
    assert isinstance(token, str) and len(token) >= 32
    assert (created["role"], created["max_uses"], created["uses"], created["dp_id"]) == (
        "client",
        50,
        0,
        None,
    )
    assert parse_time(created["expires_at"]) == expires

    shown = ok(admin.get(f"/enrolment-tokens/{created['id']}"))
    assert "token" not in shown and token not in str(shown)
    assert shown == {k: v for k, v in created.items() if k != "token"}
    listed = ok(admin.get("/enrolment-tokens"))
    assert shown in listed and token not in str(listed)

    [row] = [r for r in stored_token_rows(site_server) if r["id"] == created["id"]]
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(row)

    assert admin.delete(f"/enrolment-tokens/{created['id']}").status_code == 204
    assert admin.get(f"/enrolment-tokens/{created['id']}").status_code == 404
    assert created["id"] not in ids(ok(admin.get("/enrolment-tokens")))


def test_enrolment_token_for_a_branch_dp(admin: httpx.Client) -> None:
    dp = ok(admin.post("/distribution-points", json={"name": unique("br"), "kind": "branch"}), 201)
    created = ok(
        admin.post("/enrolment-tokens", json={"role": "branch_dp", "dp_id": dp["id"]}), 201
    )
    assert (created["role"], created["dp_id"], created["max_uses"]) == ("branch_dp", dp["id"], 1)
    other = ok(admin.post("/enrolment-tokens", json={"role": "branch_dp", "dp_id": dp["id"]}), 201)
    assert other["token"] != created["token"]


# -- the package's DP list ----------------------------------------------------------


def test_a_branch_dp_of_a_package_without_auto_download_waits_for_a_prestage(
    admin: httpx.Client,
) -> None:
    package = package_with_content(admin, auto_download_branch=False)
    branch = ok(
        admin.post("/distribution-points", json={"name": unique("br"), "kind": "branch"}), 201
    )
    standard = ok(
        admin.post("/distribution-points", json={"name": unique("dp"), "kind": "standard"}), 201
    )
    base = f"/packages/{package['id']}/distribution-points"

    row = ok(admin.post(base, json={"dp_id": branch["id"]}), 201)
    assert (row["state"], row["deadline_at"]) == ("waiting_for_prestage", None)
    assert f"peerdp package export {package['id']}" in row["detail"]
    assert f"peerdp branch import FILE on {branch['name']}" in row["detail"]
    # A standard DP is sent the content whatever the option: it is for branch DPs.
    assert ok(admin.post(base, json={"dp_id": standard["id"]}), 201)["state"] == "install_pending"

    def branch_row() -> dict[str, Any]:
        return next(r for r in ok(admin.get(base)) if r["dp_id"] == branch["id"])

    # An update keeps it waiting, for the new version.
    ok(upload(admin, package["id"], make_tar(unique_files())), 201)
    assert (branch_row()["state"], branch_row()["source_version"]) == ("waiting_for_prestage", 2)

    # Automatic download turned on: the branch DP is to pull it (pending, with a deadline);
    # turned off again: it waits for a prestage once more.
    path = f"/packages/{package['id']}"
    ok(admin.patch(path, json={"auto_download_branch": True}))
    pulling = branch_row()
    assert pulling["state"] == "install_pending" and pulling["deadline_at"] is not None
    ok(admin.patch(path, json={"auto_download_branch": False}))
    assert (branch_row()["state"], branch_row()["deadline_at"]) == ("waiting_for_prestage", None)


def test_package_dp_list_add_list_remove(admin: httpx.Client) -> None:
    package = package_with_content(admin)
    # A branch DP: its rows move only on its own reports, so each state stays to be seen.
    dp = ok(admin.post("/distribution-points", json={"name": unique("br"), "kind": "branch"}), 201)
    base = f"/packages/{package['id']}/distribution-points"

    row = ok(admin.post(base, json={"dp_id": dp["id"]}), 201)
    assert (row["package_id"], row["dp_id"], row["origin"], row["source_version"]) == (
        package["id"],
        dp["id"],
        "admin",
        1,
    )
    assert row["state"] == "install_pending"
    assert row["detail"], "a row says what it waits for"
    assert parse_time(row["updated_at"]) <= datetime.now(UTC) + timedelta(seconds=5)

    [listed] = ok(admin.get(base))
    for key in ("dp_id", "state", "source_version", "origin", "updated_at", "detail"):
        assert key in listed, key
    assert (listed["dp_id"], listed["origin"], listed["state"]) == (
        dp["id"],
        "admin",
        "install_pending",
    )

    removing = ok(admin.delete(f"{base}/{dp['id']}"))
    assert removing["state"] == "removal_pending"
    [listed] = ok(admin.get(base))
    assert (listed["dp_id"], listed["state"]) == (dp["id"], "removal_pending")
    types = [
        m["type"] for m in ok(admin.get("/status-messages", params={"package_id": package["id"]}))
    ]
    assert {"dp_added_to_package", "dp_removal_requested"} <= set(types)


# -- clients, on-demand requests, status messages (read-only lists) ----------------


def test_read_only_lists_answer(admin: httpx.Client) -> None:
    assert isinstance(ok(admin.get("/clients")), list)
    assert isinstance(ok(admin.get("/on-demand-requests")), list)
    since = rfc3339(datetime.now(UTC) + timedelta(days=1))
    assert ok(admin.get("/status-messages", params={"since": since})) == []


# -- the OpenAPI document -----------------------------------------------------------

# The admin API's resources (each collection, its `/{id}` form, and its sub-resources).
ADMIN_PATHS = {
    "/api/v1/boundaries": {"get", "post"},
    "/api/v1/boundaries/{}": {"get", "patch", "delete"},
    "/api/v1/distribution-points": {"get", "post"},
    "/api/v1/distribution-points/{}": {"get", "patch", "delete"},
    "/api/v1/packages": {"get", "post"},
    "/api/v1/packages/{}": {"get", "patch", "delete"},
    "/api/v1/packages/{}/versions": {"post"},
    "/api/v1/packages/{}/programs": {"get", "post"},
    "/api/v1/packages/{}/distribution-points": {"get", "post"},
    "/api/v1/packages/{}/distribution-points/{}": {"delete"},
    "/api/v1/collections": {"get", "post"},
    "/api/v1/collections/{}": {"get", "patch", "delete"},
    "/api/v1/collections/{}/members": {"post"},
    "/api/v1/advertisements": {"get", "post"},
    "/api/v1/advertisements/{}": {"get", "patch", "delete"},
    "/api/v1/enrolment-tokens": {"get", "post"},
    "/api/v1/clients": {"get"},
    "/api/v1/clients/{}": {"get"},
    "/api/v1/on-demand-requests": {"get"},
    "/api/v1/status-messages": {"get"},
}


def test_openapi_document_has_every_admin_path(site_server: SiteProcess) -> None:
    document = ok(httpx.get(site_server.url + "/openapi.json", timeout=30))
    served = {re.sub(r"\{[^}]+\}", "{}", path): set(ops) for path, ops in document["paths"].items()}
    for path, methods in ADMIN_PATHS.items():
        assert path in served, f"{path} missing from /openapi.json"
        assert methods <= served[path], f"{path}: {methods - served[path]} missing"
    upload_body = document["paths"]["/api/v1/packages/{package_id}/versions"]["post"]
    assert "application/x-tar" in upload_body["requestBody"]["content"]


# -- the admin token and a clean stop -----------------------------------------------


def test_admin_token_file_is_created_once_and_reused(db_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "site"
    token_path = data_dir / "admin-token"
    first = launch(data_dir, db_url, env_without_token())
    try:
        assert first.token_line == f"admin token: {token_path.resolve()}"
        assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
        token = token_path.read_text().strip()
        assert len(token) >= 32
        api = first.url + "/api/v1/boundaries"
        assert httpx.get(api, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert httpx.get(api, headers={"Authorization": "Bearer nope"}).status_code == 401
    finally:
        first.stop()

    second = launch(data_dir, db_url, env_without_token())
    try:
        assert second.token_line == first.token_line
        assert token_path.read_text().strip() == token
        assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
        api = second.url + "/api/v1/boundaries"
        assert httpx.get(api, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        second.stop()


def test_configured_admin_token_is_used_and_no_file_made(db_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "site"
    site = launch(data_dir, db_url, env_without_token(PEERDP_ADMIN_TOKEN="configured-secret-1"))
    try:
        assert "PEERDP_ADMIN_TOKEN" in site.token_line
        assert not (data_dir / "admin-token").exists()
        api = site.url + "/api/v1/packages"
        assert (
            httpx.get(api, headers={"Authorization": "Bearer configured-secret-1"}).status_code
            == 200
        )
    finally:
        site.stop()


def test_sigterm_stops_the_server_cleanly(db_url: str, tmp_path: Path) -> None:
    site = launch(tmp_path / "site", db_url, env_without_token(PEERDP_ADMIN_TOKEN="t-sigterm"))
    api = site.url + "/api/v1/boundaries"
    assert httpx.get(api, headers={"Authorization": "Bearer t-sigterm"}).status_code == 200
    code = site.stop()
    output = "".join(site.lines)
    assert code == 0, f"exit code {code} after SIGTERM: {output}"
    assert "Traceback" not in output, output
    assert port_is_free(site.url), "the port is still held after the server exited"
