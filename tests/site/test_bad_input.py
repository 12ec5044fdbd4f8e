"""Bad input to the admin API: a 4xx whose `detail` says what is wrong, and no change.

Runs against a real `peerdp site serve` on SQLite and PostgreSQL. Each refusal is
checked twice: the answer (status and words in `detail`) and the site afterwards
(the list, the count, the content library are as they were).
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.api import unique
from tests.helpers.processes import SiteProcess, start_site

from .admin_support import (
    TAR,
    library_objects,
    make_tar,
    member,
    new_package,
    ok,
    refused,
    unique_files,
    upload,
)

pytestmark = pytest.mark.slow  # real site-server processes


@pytest.fixture
def admin(site_server: SiteProcess) -> httpx.Client:
    return site_server.admin()


def listing(admin: httpx.Client, path: str) -> Any:
    return ok(admin.get(path))


def boundary(admin: httpx.Client, value: str = "10.90.0.0/16", **extra: Any) -> dict[str, Any]:
    body = {"name": unique("bnd"), "type": "ip_subnet", "value": value, **extra}
    return ok(admin.post("/boundaries", json=body), 201)  # type: ignore[no-any-return]


def dp(admin: httpx.Client, kind: str = "branch", **extra: Any) -> dict[str, Any]:
    body = {"name": unique(kind), "kind": kind, **extra}
    return ok(admin.post("/distribution-points", json=body), 201)  # type: ignore[no-any-return]


def package_with_program(admin: httpx.Client, content: bool = False) -> dict[str, Any]:
    package = new_package(admin, unique("pkg"))
    program = {"name": "Install", "command_line": "setup.cmd"}
    ok(admin.post(f"/packages/{package['id']}/programs", json=program), 201)
    if content:
        ok(upload(admin, package["id"], make_tar(unique_files())), 201)
    return package


def collection(admin: httpx.Client) -> dict[str, Any]:
    return ok(admin.post("/collections", json={"name": unique("col")}), 201)  # type: ignore[no-any-return]


# -- boundaries ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "value", "words"),
    [
        ("ip_subnet", "10.0.0.0/33", ["10.0.0.0/33"]),
        ("ip_subnet", "10.0.0/8", ["10.0.0/8"]),
        ("ip_subnet", "fd00::/129", ["fd00::/129"]),
        ("ip_subnet", "10.1.0.0", ["prefix"]),
        ("ip_subnet", "not-a-subnet/8", ["not-a-subnet"]),
        ("ip_range", "10.1.0.1", ["10.1.0.1"]),
        ("ip_range", "10.1.0.1-", []),
        ("ip_range", "10.1.0.1-10.1.0.300", ["10.1.0.300"]),
        ("ip_range", "10.1.0.200-10.1.0.1", ["after"]),
        ("ip_range", "fd00::9-fd00::1", ["after"]),
        ("ip_range", "10.1.0.1-fd00::1", ["IPv4", "IPv6"]),
        ("ad_site", "   ", []),
    ],
)
def test_malformed_boundary_value_is_refused(
    admin: httpx.Client, type_: str, value: str, words: list[str]
) -> None:
    before = listing(admin, "/boundaries")
    body = {"name": unique("bnd"), "type": type_, "value": value}
    refused(admin.post("/boundaries", json=body), 422, *words)
    assert listing(admin, "/boundaries") == before


def test_malformed_boundary_value_in_a_patch_changes_nothing(admin: httpx.Client) -> None:
    kept = boundary(admin)
    refused(admin.patch(f"/boundaries/{kept['id']}", json={"value": "10.0.0.0/40"}), 422)
    refused(
        admin.patch(f"/boundaries/{kept['id']}", json={"type": "ip_range"}), 422, "10.90.0.0/16"
    )
    refused(admin.patch(f"/boundaries/{kept['id']}", json={"name": None}), 422, "name")
    assert ok(admin.get(f"/boundaries/{kept['id']}")) == kept


def test_unknown_boundary_type_and_connection(admin: httpx.Client) -> None:
    before = listing(admin, "/boundaries")
    body = {"name": unique("bnd"), "type": "subnet", "value": "10.0.0.0/8"}
    refused(admin.post("/boundaries", json=body), 422, "type")
    body = {"name": unique("bnd"), "type": "ip_subnet", "value": "10.0.0.0/8", "connection": "lan"}
    refused(admin.post("/boundaries", json=body), 422, "connection")
    assert listing(admin, "/boundaries") == before


def test_deleting_a_protected_boundary_is_refused(admin: httpx.Client) -> None:
    protected = boundary(admin)
    owner = dp(admin, protected_boundary_ids=[protected["id"]])
    refused(admin.delete(f"/boundaries/{protected['id']}"), 409, "protect")
    assert ok(admin.get(f"/boundaries/{protected['id']}")) == protected
    assert ok(admin.get(f"/distribution-points/{owner['id']}"))["protected_boundary_ids"] == [
        protected["id"]
    ]


# -- distribution points ------------------------------------------------------------


def test_dp_protecting_a_missing_boundary_is_refused(admin: httpx.Client) -> None:
    real = boundary(admin)
    before = listing(admin, "/distribution-points")
    missing = 2_000_000_000
    body = {"name": unique("br"), "kind": "branch", "protected_boundary_ids": [real["id"], missing]}
    refused(admin.post("/distribution-points", json=body), 422, str(missing))
    assert listing(admin, "/distribution-points") == before

    existing = dp(admin, protected_boundary_ids=[real["id"]])
    patch = {"protected_boundary_ids": [missing]}
    refused(admin.patch(f"/distribution-points/{existing['id']}", json=patch), 422, str(missing))
    assert ok(admin.get(f"/distribution-points/{existing['id']}")) == existing


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"kind": "relay"}, ["kind"]),
        ({"url": "ftp://dp.example"}, ["url"]),
        ({"ip_addresses": ["10.0.0.999"]}, ["10.0.0.999"]),
        ({"max_transfers": 0}, ["max_transfers"]),
        ({"bits_enabled": "maybe"}, ["bits_enabled"]),
        ({"protected_boundary_ids": "1"}, ["protected_boundary_ids"]),
    ],
)
def test_malformed_dp_is_refused(
    admin: httpx.Client, body: dict[str, Any], words: list[str]
) -> None:
    before = listing(admin, "/distribution-points")
    full = {"name": unique("dp"), "kind": "standard", **body}
    refused(admin.post("/distribution-points", json=full), 422, *words)
    assert listing(admin, "/distribution-points") == before


# -- unknown IDs: 404 for each resource ---------------------------------------------

UNKNOWN = 2_000_000_001  # an ID no test creates, inside every database's integer range


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/boundaries/{UNKNOWN}", None),
        ("PATCH", f"/boundaries/{UNKNOWN}", {"connection": "slow"}),
        ("DELETE", f"/boundaries/{UNKNOWN}", None),
        ("GET", f"/distribution-points/{UNKNOWN}", None),
        ("PATCH", f"/distribution-points/{UNKNOWN}", {"bits_enabled": False}),
        ("DELETE", f"/distribution-points/{UNKNOWN}", None),
        ("GET", "/packages/PS1FFFFE", None),
        ("PATCH", "/packages/PS1FFFFE", {"on_demand": True}),
        ("DELETE", "/packages/PS1FFFFE", None),
        ("GET", "/packages/PS1FFFFE/versions", None),
        ("GET", "/packages/PS1FFFFE/programs", None),
        ("POST", "/packages/PS1FFFFE/programs", {"name": "I", "command_line": "x"}),
        ("GET", "/packages/PS1FFFFE/distribution-points", None),
        ("POST", "/packages/PS1FFFFE/distribution-points", {"dp_id": 1}),
        ("GET", f"/collections/{UNKNOWN}", None),
        ("PATCH", f"/collections/{UNKNOWN}", {"name": "x"}),
        ("DELETE", f"/collections/{UNKNOWN}", None),
        ("POST", f"/collections/{UNKNOWN}/members", {"member_names": ["PC-1"]}),
        ("GET", f"/advertisements/{UNKNOWN}", None),
        ("PATCH", f"/advertisements/{UNKNOWN}", {"allow_remote": True}),
        ("DELETE", f"/advertisements/{UNKNOWN}", None),
        ("GET", f"/enrolment-tokens/{UNKNOWN}", None),
        ("DELETE", f"/enrolment-tokens/{UNKNOWN}", None),
        ("GET", f"/clients/{UNKNOWN}", None),
        ("GET", f"/on-demand-requests/{UNKNOWN}", None),
    ],
)
def test_unknown_id_is_404(
    admin: httpx.Client, method: str, path: str, body: dict[str, Any] | None
) -> None:
    detail = refused(admin.request(method, path, json=body), 404)
    assert "exist" in detail or "no " in detail, detail


def test_unknown_ids_inside_a_package(admin: httpx.Client) -> None:
    package = package_with_program(admin, content=True)
    base = f"/packages/{package['id']}"
    refused(admin.get(f"{base}/programs/Nope"), 404, "Nope")
    refused(admin.patch(f"{base}/programs/Nope", json={"timeout_s": 5}), 404, "Nope")
    refused(admin.delete(f"{base}/programs/Nope"), 404, "Nope")
    refused(admin.get(f"{base}/versions/7/manifest"), 404, "7")
    refused(admin.post(f"{base}/distribution-points", json={"dp_id": UNKNOWN}), 404, str(UNKNOWN))
    refused(admin.delete(f"{base}/distribution-points/{UNKNOWN}"), 404, str(UNKNOWN))
    refused(upload(admin, "PS1FFFFE", make_tar(unique_files())), 404, "PS1FFFFE")
    assert listing(admin, f"{base}/distribution-points") == []


@pytest.mark.parametrize("path", ["/boundaries/{}", "/distribution-points/{}", "/clients/{}"])
@pytest.mark.parametrize("number", [2**31, 2**63, 10**30])
def test_id_beyond_the_database_range_is_a_4xx_not_a_crash(
    admin: httpx.Client, path: str, number: int
) -> None:
    response = admin.get(path.format(number))
    assert response.status_code in (404, 422), response.text
    assert response.json()["detail"]


# -- duplicate names ----------------------------------------------------------------


def test_duplicate_names_are_409(admin: httpx.Client) -> None:
    b = boundary(admin)
    before = listing(admin, "/boundaries")
    again = {"name": b["name"], "type": "ad_site", "value": "ELSEWHERE"}
    refused(admin.post("/boundaries", json=again), 409)
    assert listing(admin, "/boundaries") == before

    other = boundary(admin)
    refused(admin.patch(f"/boundaries/{other['id']}", json={"name": b["name"]}), 409)
    assert ok(admin.get(f"/boundaries/{other['id']}")) == other

    d = dp(admin)
    before = listing(admin, "/distribution-points")
    refused(admin.post("/distribution-points", json={"name": d["name"], "kind": "standard"}), 409)
    assert listing(admin, "/distribution-points") == before

    p = new_package(admin, unique("pkg"))
    before = listing(admin, "/packages")
    refused(admin.post("/packages", json={"name": p["name"]}), 409, p["name"])
    q = new_package(admin, unique("pkg"))
    refused(admin.patch(f"/packages/{q['id']}", json={"name": p["name"]}), 409)
    assert listing(admin, "/packages") == [*before, q]

    c = collection(admin)
    before = listing(admin, "/collections")
    refused(admin.post("/collections", json={"name": c["name"]}), 409)
    assert listing(admin, "/collections") == before


def test_duplicate_program_and_advertisement_names_are_409(admin: httpx.Client) -> None:
    package = package_with_program(admin)
    programs = f"/packages/{package['id']}/programs"
    before = listing(admin, programs)
    refused(admin.post(programs, json={"name": "Install", "command_line": "x"}), 409, "Install")
    assert listing(admin, programs) == before

    target = collection(admin)
    body = {
        "name": unique("adv"),
        "package_id": package["id"],
        "program_name": "Install",
        "collection_id": target["id"],
    }
    ok(admin.post("/advertisements", json=body), 201)
    before = listing(admin, "/advertisements")
    refused(admin.post("/advertisements", json=body), 409)
    assert listing(admin, "/advertisements") == before


# -- advertisements -----------------------------------------------------------------


def advertisement_body(admin: httpx.Client, **changes: Any) -> dict[str, Any]:
    package = package_with_program(admin)
    return {
        "name": unique("adv"),
        "package_id": package["id"],
        "program_name": "Install",
        "collection_id": collection(admin)["id"],
        **changes,
    }


@pytest.mark.parametrize(
    ("changes", "status", "words"),
    [
        ({"program_name": "Uninstall"}, 422, ["Uninstall"]),
        ({"package_id": "PS1FFFFD"}, 404, ["PS1FFFFD"]),
        ({"package_id": "not-an-id"}, 422, ["package_id"]),
        ({"collection_id": UNKNOWN}, 404, [str(UNKNOWN)]),
        (
            {"available_at": "2031-01-02T00:00:00Z", "mandatory_at": "2031-01-01T00:00:00Z"},
            422,
            ["mandatory_at", "available_at"],
        ),
        ({"available_at": "tomorrow"}, 422, ["available_at"]),
        ({"available_at": "2031-01-01T00:00:00"}, 422, ["available_at", "timezone"]),
        ({"on_slow": "run"}, 422, ["on_slow"]),
        ({"on_fast": "do_not_run"}, 422, ["on_fast"]),
        ({"protected_only": "sometimes"}, 422, ["protected_only"]),
    ],
)
def test_bad_advertisement_is_refused(
    admin: httpx.Client, changes: dict[str, Any], status: int, words: list[str]
) -> None:
    body = advertisement_body(admin, **changes)
    before = listing(admin, "/advertisements")
    refused(admin.post("/advertisements", json=body), status, *words)
    assert listing(admin, "/advertisements") == before


def test_bad_advertisement_patch_changes_nothing(admin: httpx.Client) -> None:
    body = advertisement_body(
        admin, available_at="2031-01-01T00:00:00Z", mandatory_at="2031-02-01T00:00:00Z"
    )
    adv = ok(admin.post("/advertisements", json=body), 201)
    path = f"/advertisements/{adv['id']}"
    refused(admin.patch(path, json={"mandatory_at": "2030-12-31T00:00:00Z"}), 422, "mandatory_at")
    refused(admin.patch(path, json={"program_name": "Uninstall"}), 422, "Uninstall")
    refused(admin.patch(path, json={"name": None}), 422, "name")
    refused(admin.patch(path, json={"package_id": "PS100001"}), 422, "package_id")
    assert ok(admin.get(path)) == adv


# -- programs, collections, enrolment tokens, the DP list --------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"name": "I", "command_line": ""}, ["command_line"]),
        ({"name": "I", "command_line": "x", "timeout_s": 0}, ["timeout_s"]),
        ({"name": "I", "command_line": "x", "timeout_s": "abc"}, ["timeout_s"]),
        ({"name": "I\n", "command_line": "x"}, ["name"]),
        ({"name": "I", "command_line": "a\u0000b"}, ["command_line"]),
        ({"command_line": "x"}, ["name"]),
    ],
)
def test_bad_program_is_refused(
    admin: httpx.Client, body: dict[str, Any], words: list[str]
) -> None:
    package = new_package(admin, unique("pkg"))
    path = f"/packages/{package['id']}/programs"
    refused(admin.post(path, json=body), 422, *words)
    assert listing(admin, path) == []


def test_bad_collection_input_is_refused(admin: httpx.Client) -> None:
    before = listing(admin, "/collections")
    refused(admin.post("/collections", json={"name": unique("c"), "member_names": "PC-1"}), 422)
    refused(admin.post("/collections", json={"name": unique("c"), "member_names": [""]}), 422)
    assert listing(admin, "/collections") == before

    kept = ok(admin.post("/collections", json={"name": unique("c"), "member_names": ["PC-1"]}), 201)
    path = f"/collections/{kept['id']}"
    refused(admin.post(f"{path}/members", json={"member_names": []}), 422, "member_names")
    refused(admin.post(f"{path}/members", json={"member_names": ["PC\u00012"]}), 422)
    response = admin.delete(f"{path}/members/PC-404")
    assert response.status_code in (404, 422) and "PC-404" in response.json()["detail"]
    assert ok(admin.get(path)) == kept


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"role": "admin"}, 422, ["role"]),
        ({"role": "branch_dp"}, 422, ["dp_id"]),
        ({"role": "standard_dp", "dp_id": "BRANCH"}, 422, ["branch"]),
        ({"role": "client", "dp_id": "BRANCH"}, 422, ["dp_id"]),
        ({"role": "standard_dp", "dp_id": UNKNOWN}, 404, [str(UNKNOWN)]),
        ({"role": "client", "max_uses": 0}, 422, ["max_uses"]),
        ({"role": "client", "expires_at": "2001-01-01T00:00:00Z"}, 422, ["expires_at"]),
        ({"role": "client", "expires_at": "2099-01-01T00:00:00"}, 422, ["expires_at"]),
        ({"role": "client", "token": "chosen"}, 422, ["token"]),
    ],
)
def test_bad_enrolment_token_request_is_refused(
    admin: httpx.Client, body: dict[str, Any], status: int, words: list[str]
) -> None:
    if body.get("dp_id") == "BRANCH":
        body = {**body, "dp_id": dp(admin, "branch")["id"]}  # the wrong kind, or no DP role
    before = listing(admin, "/enrolment-tokens")
    refused(admin.post("/enrolment-tokens", json=body), status, *words)
    assert listing(admin, "/enrolment-tokens") == before


def test_package_dp_list_refusals(admin: httpx.Client) -> None:
    empty = new_package(admin, unique("pkg"))
    branch = dp(admin, "branch")
    path = f"/packages/{empty['id']}/distribution-points"
    refused(admin.post(path, json={"dp_id": branch["id"]}), 409, "content")
    assert listing(admin, path) == []

    package = package_with_program(admin, content=True)
    path = f"/packages/{package['id']}/distribution-points"
    ok(admin.post(path, json={"dp_id": branch["id"]}), 201)
    before = listing(admin, path)
    refused(admin.post(path, json={"dp_id": branch["id"]}), 409, branch["name"])
    refused(admin.post(path, json={"dp_id": "one"}), 422, "dp_id")
    refused(admin.post(path, json={"dp_id": branch["id"], "state": "installed"}), 422, "state")
    assert listing(admin, path) == before


# -- package content ----------------------------------------------------------------

BAD_MEMBERS = {
    "parent": (member("../x"), b"escape\n", ".."),
    "nested_parent": (member("data/../../x"), b"escape\n", ".."),
    "absolute": (member("/etc/cron.d/x"), b"escape\n", "absolute"),
    "symlink": (member("link", tarfile.SYMTYPE, "/etc/passwd"), b"", "symlink"),
    "hardlink": (member("hard", tarfile.LNKTYPE, "setup.cmd"), b"", "hardlink"),
    "device": (member("dev", tarfile.CHRTYPE), b"", "device"),
    "nul_in_name": (member("a\x00b.txt"), b"cut to a\n", "NUL byte"),
    "bidi_override_in_name": (member("setup\u202eexe.txt"), b"x\n", "U+202E"),
    "zero_width_in_name": (member("data/a\u200b.cab"), b"x\n", "U+200B"),
}


@pytest.mark.parametrize("kind", sorted(BAD_MEMBERS))
def test_unsafe_tar_member_is_refused_and_stores_nothing(
    admin: httpx.Client, site_server: SiteProcess, kind: str
) -> None:
    info, content, word = BAD_MEMBERS[kind]
    package = new_package(admin, unique("pkg"))
    # Good files come first, so the server has staged them when it meets the bad one.
    body = make_tar(unique_files(3), (info, content))
    objects = library_objects(site_server.data_dir)

    refused(upload(admin, package["id"], body), 422, word)

    assert library_objects(site_server.data_dir) == objects
    assert listing(admin, f"/packages/{package['id']}/versions") == []
    assert ok(admin.get(f"/packages/{package['id']}"))["source_version"] == 0


def test_unsafe_update_keeps_the_current_version(
    admin: httpx.Client, site_server: SiteProcess
) -> None:
    package = new_package(admin, unique("pkg"))
    ok(upload(admin, package["id"], make_tar(unique_files())), 201)
    current = ok(admin.get(f"/packages/{package['id']}"))
    objects = library_objects(site_server.data_dir)

    refused(upload(admin, package["id"], make_tar(unique_files(), (member("../evil"), b"x"))), 422)

    assert library_objects(site_server.data_dir) == objects
    assert ok(admin.get(f"/packages/{package['id']}")) == current
    assert len(listing(admin, f"/packages/{package['id']}/versions")) == 1


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"files": ["setup.cmd"]}', "application/json"),
        (b"this is not a tar archive" * 40, "application/x-tar"),
        (b"", "application/x-tar"),
        (make_tar({}), "application/x-tar"),
        (make_tar({"a": b"1" * 5000})[:2000], "application/x-tar"),
    ],
    ids=["json", "garbage", "empty-body", "no-files", "truncated"],
)
def test_non_tar_body_is_refused(
    admin: httpx.Client, site_server: SiteProcess, body: bytes, content_type: str
) -> None:
    package = new_package(admin, unique("pkg"))
    objects = library_objects(site_server.data_dir)
    response = admin.post(
        f"/packages/{package['id']}/versions", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code in (400, 415, 422), response.text
    assert response.json()["detail"]
    assert library_objects(site_server.data_dir) == objects
    assert listing(admin, f"/packages/{package['id']}/versions") == []
    assert ok(admin.get(f"/packages/{package['id']}"))["source_version"] == 0


def test_duplicate_path_in_tar_is_refused(admin: httpx.Client, site_server: SiteProcess) -> None:
    package = new_package(admin, unique("pkg"))
    files = unique_files()
    objects = library_objects(site_server.data_dir)
    body = make_tar(files, (member("setup.cmd"), b"second copy\n"))
    refused(upload(admin, package["id"], body), 422, "setup.cmd")
    assert library_objects(site_server.data_dir) == objects
    assert ok(admin.get(f"/packages/{package['id']}"))["source_version"] == 0


# -- request bodies: unknown fields, wrong types, not JSON ------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/boundaries", {"name": "n", "type": "ad_site", "value": "S", "colour": "red"}),
        ("/distribution-points", {"name": "n", "kind": "standard", "speed": 10}),
        ("/packages", {"name": "n", "source_version": 5}),
        ("/packages", {"name": "n", "id": "PS100042"}),
        ("/collections", {"name": "n", "members": ["PC-1"]}),
        ("/enrolment-tokens", {"role": "client", "uses": 0}),
    ],
)
def test_unknown_fields_are_refused(admin: httpx.Client, path: str, body: dict[str, Any]) -> None:
    before = listing(admin, path)
    unknown = next(k for k in body if k not in {"name", "type", "value", "kind", "role"})
    if "name" in body:
        body = {**body, "name": unique("n")}
    refused(admin.post(path, json=body), 422, unknown)
    assert listing(admin, path) == before


def test_unknown_fields_in_a_patch_are_refused(admin: httpx.Client) -> None:
    kept = boundary(admin)
    refused(admin.patch(f"/boundaries/{kept['id']}", json={"id": 1}), 422, "id")
    package = new_package(admin, unique("pkg"))
    refused(admin.patch(f"/packages/{package['id']}", json={"source_version": 9}), 422)
    assert ok(admin.get(f"/boundaries/{kept['id']}")) == kept
    assert ok(admin.get(f"/packages/{package['id']}")) == package


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/boundaries", {"name": 5, "type": "ad_site", "value": "S"}, "name"),
        ("/boundaries", {"name": ["a"], "type": "ad_site", "value": "S"}, "name"),
        ("/boundaries", {"name": "n", "type": "ad_site", "value": None}, "value"),
        ("/boundaries", {"name": "n", "type": "ad_site", "value": "A\u0000B"}, "value"),
        ("/boundaries", {"name": "x" * 201, "type": "ad_site", "value": "S"}, "name"),
        ("/packages", {"name": "n", "on_demand": "perhaps"}, "on_demand"),
        ("/packages", {"name": "n", "auto_download_branch": [True]}, "auto_download_branch"),
        ("/collections", {"name": {"first": "n"}}, "name"),
        ("/distribution-points", {"name": "n", "kind": "branch", "ad_site": "A\u0000"}, "ad_site"),
        (
            "/distribution-points",
            {"name": "n", "kind": "branch", "protected_boundary_ids": [2**40]},
            "protected_boundary_ids",
        ),
        ("/enrolment-tokens", {"role": "client", "max_uses": 1.5}, "max_uses"),
    ],
)
def test_wrong_types_are_refused(
    admin: httpx.Client, path: str, body: dict[str, Any], field: str
) -> None:
    before = listing(admin, path)
    refused(admin.post(path, json=body), 422, field)
    assert listing(admin, path) == before


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"name": "n", "type": "ad_site",', "application/json"),
        (b"[]", "application/json"),
        (b'"a string"', "application/json"),
        (b"name=n&type=ad_site&value=S", "application/x-www-form-urlencoded"),
    ],
    ids=["truncated-json", "array", "string", "form"],
)
def test_body_that_is_not_a_json_object_is_refused(
    admin: httpx.Client, content: bytes, content_type: str
) -> None:
    before = listing(admin, "/boundaries")
    response = admin.post("/boundaries", content=content, headers={"Content-Type": content_type})
    refused(response, 422)
    assert listing(admin, "/boundaries") == before


def test_query_filters_are_checked(admin: httpx.Client) -> None:
    refused(admin.get("/on-demand-requests", params={"state": "lost"}), 422, "state")
    refused(admin.get("/status-messages", params={"since": "yesterday"}), 422, "since")
    refused(admin.get("/status-messages", params={"limit": 0}), 422, "limit")
    response = admin.get("/status-messages", params={"client_name": "PC\u00001"})
    assert response.status_code in (200, 422), response.text


# -- authentication -----------------------------------------------------------------


def test_missing_or_wrong_token_is_401_and_changes_nothing(site_server: SiteProcess) -> None:
    admin = site_server.admin()
    before = listing(admin, "/boundaries")
    body = {"name": unique("bnd"), "type": "ad_site", "value": "S"}
    api = site_server.url + "/api/v1/boundaries"
    cases: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer " + site_server.admin_token + "x"},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic " + site_server.admin_token},
        {"Authorization": site_server.admin_token},
    ]
    for headers in cases:
        for response in (
            httpx.get(api, headers=headers),
            httpx.post(api, json=body, headers=headers),
        ):
            refused(response, 401)
            assert response.headers.get("www-authenticate", "").lower().startswith("bearer"), (
                headers
            )
    missing = httpx.get(api)
    refused(missing, 401, "bearer")
    assert listing(admin, "/boundaries") == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/distribution-points",
        "/api/v1/packages",
        "/api/v1/collections",
        "/api/v1/advertisements",
        "/api/v1/enrolment-tokens",
        "/api/v1/clients",
        "/api/v1/on-demand-requests",
        "/api/v1/status-messages",
    ],
)
def test_every_admin_list_needs_the_token(site_server: SiteProcess, path: str) -> None:
    refused(httpx.get(site_server.url + path), 401)
    refused(httpx.get(site_server.url + path, headers={"Authorization": "Bearer wrong"}), 401)


def test_upload_without_token_stores_nothing(site_server: SiteProcess) -> None:
    admin = site_server.admin()
    package = new_package(admin, unique("pkg"))
    objects = library_objects(site_server.data_dir)
    response = httpx.post(
        f"{site_server.url}/api/v1/packages/{package['id']}/versions",
        content=make_tar(unique_files()),
        headers=TAR,
    )
    refused(response, 401)
    assert library_objects(site_server.data_dir) == objects
    assert ok(admin.get(f"/packages/{package['id']}"))["source_version"] == 0


# -- body size limit ----------------------------------------------------------------


@pytest.fixture(scope="module")
def small_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteProcess]:
    """A second server with a 2 KiB JSON body limit (SQLite: the limit is the same code)."""
    data_dir: Path = tmp_path_factory.mktemp("small-site")
    server = start_site(
        data_dir,
        f"sqlite:///{data_dir / 'site.db'}",
        extra_env={"PEERDP_MAX_BODY_BYTES": "2048"},
    )
    try:
        yield server
    finally:
        server.stop()


def test_json_body_over_the_limit_is_413(small_site: SiteProcess) -> None:
    admin = small_site.admin()
    before = listing(admin, "/boundaries")
    padding = " " * 3000
    big = f'{{"name": "{unique("bnd")}", "type": "ad_site", "value": "S"{padding}}}'.encode()
    headers = {"Content-Type": "application/json"}

    refused(admin.post("/boundaries", content=big, headers=headers), 413, "2048")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count
        for i in range(0, len(big), 512):
            yield big[i : i + 512]

    refused(admin.post("/boundaries", content=chunks(), headers=headers), 413, "2048")
    assert listing(admin, "/boundaries") == before

    small = {"name": unique("bnd"), "type": "ad_site", "value": "S"}
    ok(admin.post("/boundaries", json=small), 201)
