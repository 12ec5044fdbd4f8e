"""Every input is what it claims, against a real site server (SQLite and PostgreSQL):
addresses, subnets and names that are not refused with a 422 naming the field and the
form to write, and nothing changes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers.api import ok, unique
from tests.helpers.processes import SiteProcess

from .admin_support import refused

pytestmark = pytest.mark.slow  # real site-server processes


@pytest.fixture
def admin(site_server: SiteProcess) -> httpx.Client:
    return site_server.admin()


def listing(admin: httpx.Client, path: str) -> Any:
    return ok(admin.get(path))


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("10.1.1.5/24", ["host bits", "write 10.1.1.0/24"]),
        ("fe80::%eth0/64", ["scope", "write fe80::/64"]),
    ],
)
def test_subnets_not_in_their_one_form_are_refused(
    admin: httpx.Client, value: str, words: list[str]
) -> None:
    before = listing(admin, "/boundaries")
    body = {"name": unique("bnd"), "type": "ip_subnet", "value": value}
    refused(admin.post("/boundaries", json=body), 422, *words)
    created = ok(admin.post("/boundaries", json={**body, "value": "10.91.0.0/16"}), 201)
    refused(admin.patch(f"/boundaries/{created['id']}", json={"value": value}), 422, *words)
    assert ok(admin.get(f"/boundaries/{created['id']}"))["value"] == "10.91.0.0/16"
    assert len(listing(admin, "/boundaries")) == len(before) + 1


@pytest.mark.parametrize("bad", ["999.9.9.9", "abc", "10.0.0.0/8", "fe80::1%eth0"])
def test_bad_dp_addresses_are_refused(admin: httpx.Client, bad: str) -> None:
    before = listing(admin, "/distribution-points")
    body = {"name": unique("dp"), "kind": "branch", "ip_addresses": [bad]}
    refused(admin.post("/distribution-points", json=body), 422, "ip_addresses.0", bad)
    assert listing(admin, "/distribution-points") == before


def test_names_with_invisible_characters_are_refused(admin: httpx.Client) -> None:
    before = listing(admin, "/packages")
    refused(admin.post("/packages", json={"name": "Acme\u202eexe.txt"}), 422, "name", "U+202E")
    refused(admin.post("/collections", json={"name": "All\u200bPCs"}), 422, "name", "U+200B")
    assert listing(admin, "/packages") == before


def test_machines_report_only_addresses(site_server: SiteProcess, admin: httpx.Client) -> None:
    token = ok(admin.post("/enrolment-tokens", json={"role": "client"}), 201)["token"]
    register = site_server.url + "/mp/v1/register"
    name = unique("pc")
    bad = httpx.post(register, json={"token": token, "name": name, "ip_addresses": ["abc"]})
    refused(bad, 422, "ip_addresses.0", "abc")
    hidden = httpx.post(register, json={"token": token, "name": "PC\u202e1"})
    refused(hidden, 422, "name", "U+202E")
    # The refused attempts did not spend the single-use token.
    ok(httpx.post(register, json={"token": token, "name": name}), 201)


def test_explain_refuses_a_bad_address(admin: httpx.Client) -> None:
    params = {"client": "PC1", "advertisement_id": 1, "ip_address": "10.0.0.0/8"}
    refused(admin.get("/explain", params=params), 422, "ip_address", "subnet")


def test_ad_site_names_with_invisible_characters_are_refused(
    site_server: SiteProcess, admin: httpx.Client
) -> None:
    # A right-to-left override would make "BRANCH-01" and another site's name look alike.
    hidden = "BRANCH\u202e-01"
    body = {"name": unique("bnd"), "type": "ad_site", "value": hidden}
    refused(admin.post("/boundaries", json=body), 422, "AD site name", "U+202E")
    dp = {"name": unique("dp"), "kind": "branch", "ad_site": hidden}
    refused(admin.post("/distribution-points", json=dp), 422, "ad_site", "U+202E")
    token = ok(admin.post("/enrolment-tokens", json={"role": "client"}), 201)["token"]
    register = site_server.url + "/mp/v1/register"
    name = unique("pc")
    refused(
        httpx.post(register, json={"token": token, "name": name, "ad_site": hidden}),
        422,
        "ad_site",
        "U+202E",
    )
    params = {"client": "PC1", "advertisement_id": 1, "ad_site": "A\u200bB"}
    refused(admin.get("/explain", params=params), 422, "ad_site", "U+200B")
    # Refused attempts spent nothing; a visible AD site is taken.
    ok(httpx.post(register, json={"token": token, "name": name, "ad_site": "BRANCH-01"}), 201)


def test_on_demand_without_auto_download_is_refused_in_either_order(admin: httpx.Client) -> None:
    """SCCM offers on-demand distribution only with automatic download: refused at create
    and at every change that would make the combination, whichever option comes first."""
    before = listing(admin, "/packages")
    both = {"name": unique("pkg"), "on_demand": True, "auto_download_branch": False}
    refused(admin.post("/packages", json=both), 422, "on-demand", "automatic download")
    assert listing(admin, "/packages") == before

    prestaged = ok(admin.post("/packages", json={**both, "on_demand": False}), 201)
    path = f"/packages/{prestaged['id']}"
    refused(admin.patch(path, json={"on_demand": True}), 422, "auto_download_branch")
    on_demand = ok(
        admin.post("/packages", json={**both, "name": unique("pkg"), "auto_download_branch": True}),
        201,
    )
    other = f"/packages/{on_demand['id']}"
    refused(admin.patch(other, json={"auto_download_branch": False}), 422, "on_demand")
    assert ok(admin.get(path)) == prestaged and ok(admin.get(other)) == on_demand

    # Both changed in one request is judged on the result.
    both_on = ok(admin.patch(path, json={"on_demand": True, "auto_download_branch": True}))
    assert (both_on["on_demand"], both_on["auto_download_branch"]) == (True, True)
    both_off = ok(admin.patch(other, json={"on_demand": False, "auto_download_branch": False}))
    assert (both_off["on_demand"], both_off["auto_download_branch"]) == (False, False)
