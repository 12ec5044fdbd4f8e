"""Package IDs in any case: the admin API takes `ps100001` for `PS100001` in paths, query
filters and bodies (real site server, SQLite and PostgreSQL)."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers.api import unique
from tests.helpers.processes import SiteProcess

from .admin_support import make_tar, new_package, ok, unique_files, upload

pytestmark = pytest.mark.slow  # real site-server processes


def test_a_package_id_in_lower_case_names_the_package(site_server: SiteProcess) -> None:
    admin = site_server.admin()
    package = new_package(admin, unique("pkg"))
    lower = package["id"].lower()
    assert ok(admin.get(f"/packages/{lower}"))["id"] == package["id"]
    ok(upload(admin, lower, make_tar(unique_files())), 201)
    program = {"name": "Install", "command_line": "setup.cmd"}
    assert (
        ok(admin.post(f"/packages/{lower}/programs", json=program), 201)["package_id"]
        == (package["id"])
    )
    assert [v["source_version"] for v in ok(admin.get(f"/packages/{lower}/versions"))] == [1]
    dp = ok(admin.post("/distribution-points", json={"name": unique("dp"), "kind": "branch"}), 201)
    ok(admin.post(f"/packages/{lower}/distribution-points", json={"dp_id": dp["id"]}), 201)

    messages = ok(admin.get("/status-messages", params={"package_id": lower}))
    assert {m["package_id"] for m in messages} == {package["id"]} and len(messages) == 2

    collection = ok(admin.post("/collections", json={"name": unique("c")}), 201)
    body = {
        "name": unique("adv"),
        "package_id": lower,
        "program_name": "Install",
        "collection_id": collection["id"],
    }
    assert ok(admin.post("/advertisements", json=body), 201)["package_id"] == package["id"]
    assert admin.get("/packages/ps1zzzzz").status_code == 404


def test_other_ids_are_not_changed(site_server: SiteProcess) -> None:
    answer: httpx.Response = site_server.admin().get("/packages/not-an-id")
    assert answer.status_code == 404
