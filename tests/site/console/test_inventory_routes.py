"""The console's inventory pages in process, on each database, over one seeded site: 300
boundaries, 123 DPs, 5 packages (one on 121 DPs), a collection of 250 machines. Paging,
filters, links between the pages, unknown IDs and hostile query values."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI

from peerdp.config import SiteSettings
from peerdp.site.app import create_app
from peerdp.store.models import (
    Collection,
    DeploymentStateRow,
    OnDemandRequest,
    PackageDistributionPoint,
    utcnow,
)
from tests.helpers.asgi import asgi_request
from tests.helpers.postgres import pg_schema
from tests.site.mp_seed import Shape, seed

SHAPE = Shape(boundaries=300, branches=120, standard_dps=3, packages=5, clients=250)
WIDE = "PS100001"  # on every DP: 3 standard, 120 branches
FAILED_ON = ("br7", "br42")  # its failed rows


def _seed(app: FastAPI) -> None:
    ctx = app.state.site
    now = utcnow()
    with ctx.transaction() as s:
        seed(s, SHAPE, lambda i: f"inventory-{i}")
        s.bulk_insert_mappings(
            PackageDistributionPoint,
            [
                {
                    "package_id": WIDE,
                    "dp_id": SHAPE.standard_dps + i + 1,
                    "state": "install_failed" if f"br{i}" in FAILED_ON else "installed",
                    "source_version": 1,
                    "origin": "on_demand",
                    "detail": "disk full" if f"br{i}" in FAILED_ON else "",
                    "attempts": 3 if f"br{i}" in FAILED_ON else 1,
                    "served_bytes": 1024 * i,
                    "updated_at": now,
                }
                for i in range(1, SHAPE.branches)  # br0 holds it already (the seed's)
            ],
        )
        s.add(Collection(id=2, name="empty"))
        s.add(
            OnDemandRequest(
                package_id="PS100002", source_version=1, dp_id=5, client_name="pc1", state="delayed"
            )
        )
        s.bulk_insert_mappings(
            DeploymentStateRow,
            [
                {
                    "advertisement_id": 1,
                    "client_name": f"pc{i}",
                    "state": "succeeded" if i % 3 else "failed",
                    "source_version": 1,
                    "at": now - timedelta(minutes=1),
                }
                for i in range(30)
            ],
        )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FastAPI]:
    tmp = tmp_path_factory.mktemp("inventory")

    def build(db: str) -> FastAPI:
        settings = {"data_dir": tmp / "site", "admin_token": "secret", "db": db}
        made = create_app(SiteSettings.model_validate(settings))
        _seed(made)
        return made

    if request.param == "sqlite":
        yield build(f"sqlite:///{tmp / 'site.db'}")
        return
    with pg_schema("inv") as url:
        yield build(url)


@pytest.fixture(scope="module")
def cookie(app: FastAPI) -> dict[str, str]:
    form = {"credential": "secret"}
    signed = asgi_request(app, "POST", "/console/sign-in", {"Origin": "http://app"}, data=form)
    assert signed.status_code == 303, signed.text
    return {"Cookie": signed.headers["set-cookie"].split(";")[0]}


def get(app: FastAPI, cookie: dict[str, str], path: str, status: int = 200) -> httpx.Response:
    answer = asgi_request(app, "GET", path, cookie)
    assert answer.status_code == status, f"{path}: {answer.status_code} {answer.text[:500]}"
    assert "text/html" in answer.headers["content-type"]
    return answer


def rows(html: str, attribute: str) -> list[str]:
    return re.findall(rf'<tr {attribute}="([^"]*)"', html)


def test_the_packages_list_counts_each_package_in_sql(app: FastAPI, cookie: dict[str, str]) -> None:
    page = get(app, cookie, "/console/packages")
    assert rows(page.text, "data-package") == [f"PS10000{i}" for i in range(1, 6)]
    assert "<h1>Packages</h1>" in page.text and 'data-live="/console/packages/live?' in page.text
    wide = re.search(r'<tr data-package="PS100001">(.*?)</tr>', page.text, re.S)
    assert wide and "121 of 123 DPs" in wide[1]  # 2 failed rows
    asked = re.search(r'<tr data-package="PS100002">(.*?)</tr>', page.text, re.S)
    assert asked and asked[1].strip().endswith("<td>1</td>")  # its on-demand request
    assert 'href="/console/packages/PS100003"' in page.text
    # By name or by ID (any case); the live fragment has no page around it.
    assert rows(get(app, cookie, "/console/packages?q=PKG3").text, "data-package") == ["PS100004"]
    assert len(rows(get(app, cookie, "/console/packages?q=ps1000").text, "data-package")) == 5
    live = get(app, cookie, "/console/packages/live?q=pkg1").text
    assert rows(live, "data-package") == ["PS100002"] and "<html" not in live


def test_the_advertisements_list_shows_options_and_succeeded_of_total(
    app: FastAPI, cookie: dict[str, str]
) -> None:
    page = get(app, cookie, "/console/advertisements").text
    assert rows(page, "data-advertisement") == ["adv4", "adv3", "adv2", "adv1", "adv0"]
    first = re.search(r'<tr data-advertisement="adv0">(.*?)</tr>', page, re.S)
    assert first
    assert "20 of 30, 10 failed" in first[1] and 'class="bar"' in first[1]
    assert "protected DPs only" in first[1] and "slow boundary: do not run" in first[1]
    assert 'href="/console/advertisements/1"' in first[1]
    assert 'href="/console/collections/1"' in first[1]
    assert rows(get(app, cookie, "/console/advertisements?q=adv2").text, "data-advertisement") == [
        "adv2"
    ]
    assert "0 advertisement(s)" in get(app, cookie, "/console/advertisements?q=zz").text


def test_distribution_points_page_filter_and_show_failures(
    app: FastAPI, cookie: dict[str, str]
) -> None:
    first = get(app, cookie, "/console/distribution-points").text
    assert "123 distribution point(s)" in first and "Page 1 of 2" in first
    names = rows(first, "data-dp")
    assert len(names) == 100 and names[:3] == ["br0", "br1", "br10"]
    second = rows(get(app, cookie, "/console/distribution-points?number=2").text, "data-dp")
    assert len(second) == 23 and not set(names) & set(second)
    branches = get(app, cookie, "/console/distribution-points?kind=branch&q=BR1").text
    assert "31 distribution point(s)" in branches  # br1, br10-br19, br100-br119
    standard = get(app, cookie, "/console/distribution-points?kind=standard").text
    assert rows(standard, "data-dp") == ["std0", "std1", "std2"]
    failing = re.search(r'<tr data-dp="br7" class="failing">(.*?)</tr>', first, re.S)
    assert failing and "b7" in failing[1] and "10.0.7.0/24" in failing[1]


def test_a_distribution_point_page_lists_its_packages_failed_first(
    app: FastAPI, cookie: dict[str, str]
) -> None:
    page = get(app, cookie, "/console/distribution-points/11").text  # br7
    assert "<h1>Distribution point br7 <small>branch</small></h1>" in page
    assert rows(page, "data-package")[0] == WIDE
    assert '<tr data-package="PS100001" class="failing">' in page and "disk full" in page
    assert "installed <span data-installed>" in page
    assert "not reported to the site" in page and "http://127.0.0.1:20007/metrics" in page
    assert 'href="/console/packages/PS100001"' in page and "10.0.7.0/24" in page
    live = get(app, cookie, "/console/distribution-points/11/live").text
    assert "<html" not in live and rows(live, "data-package")[0] == WIDE
    std = get(app, cookie, "/console/distribution-points/1").text
    assert "It protects no boundary." in std


def test_300_boundaries_page_and_filter_by_type_and_value(
    app: FastAPI, cookie: dict[str, str]
) -> None:
    pages = [
        rows(get(app, cookie, f"/console/boundaries?number={n}").text, "data-boundary")
        for n in (1, 2, 3, 4)
    ]
    assert [len(p) for p in pages] == [100, 100, 100, 0]
    assert len(set(pages[0] + pages[1] + pages[2])) == 300
    second = get(app, cookie, "/console/boundaries?number=2").text
    assert "Page 2 of 3" in second and 'rel="prev"' in second and 'rel="next"' in second
    second_hundred = get(app, cookie, "/console/boundaries?type=ip_subnet&q=10.1.").text
    assert "50 boundaries" in second_hundred  # boundaries 250-299: 10.1.0-49.0/24
    assert "0 boundaries" in get(app, cookie, "/console/boundaries?type=ad_site").text
    first = get(app, cookie, "/console/boundaries?q=10.0.0.").text
    b0 = re.search(r'<tr data-boundary="b0">(.*?)</tr>', first, re.S)
    assert b0 and '<a href="/console/distribution-points/4">br0</a>' in b0[1]
    unprotected = get(app, cookie, "/console/boundaries?q=b299").text
    assert rows(unprotected, "data-boundary") == ["b299"] and "no DP" in unprotected


def test_collections_and_a_collection_page_its_members(
    app: FastAPI, cookie: dict[str, str]
) -> None:
    listed = get(app, cookie, "/console/collections").text
    everyone = re.search(r'<tr data-collection="all">(.*?)</tr>', listed, re.S)
    assert everyone and "<td>250</td>" in everyone[1] and "<td>5</td>" in everyone[1]
    assert rows(listed, "data-collection") == ["all", "empty"]
    page = get(app, cookie, "/console/collections/1").text
    assert "Members (250)" in page and "Page 1 of 3" in page
    assert len(rows(page, "data-member")) == 100
    assert rows(page, "data-advertisement") == ["adv4", "adv3", "adv2", "adv1", "adv0"]
    last = get(app, cookie, "/console/collections/1?number=3").text
    assert len(rows(last, "data-member")) == 50
    found = get(app, cookie, "/console/collections/1?q=PC24").text
    assert rows(found, "data-member") == [
        "pc24",
        "pc240",
        "pc241",
        "pc242",
        "pc243",
        "pc244",
        "pc245",
        "pc246",
        "pc247",
        "pc248",
        "pc249",
    ]
    assert "yes" in found  # registered clients
    empty = get(app, cookie, "/console/collections/2").text
    assert "No advertisement targets it." in empty and "No member." in empty


def test_a_package_page_draws_its_dp_rows_a_page_at_a_time(
    app: FastAPI, cookie: dict[str, str]
) -> None:
    page = get(app, cookie, f"/console/packages/{WIDE}").text
    assert "installed on <span data-installed>121</span> of 123" in page
    drawn = rows(page, "data-dp")
    assert len(drawn) == 100 and drawn[:2] == sorted(FAILED_ON)
    assert f'data-live="/console/packages/{WIDE}/live?number=1"' in page
    rest = rows(get(app, cookie, f"/console/packages/{WIDE}?number=2").text, "data-dp")
    assert len(rest) == 23 and not set(rest) & set(drawn)
    live = get(app, cookie, f"/console/packages/{WIDE}/live?number=2").text
    assert rows(live, "data-dp") == rest and "of 123" in live


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/console/distribution-points/999999", 404, "distribution point 999999 does not exist"),
        ("/console/distribution-points/999999/live", 404, "does not exist"),
        ("/console/collections/424242", 404, "collection 424242 does not exist"),
        ("/console/distribution-points/abc", 422, "dp_id"),
        ("/console/distribution-points/0", 422, "dp_id"),
        ("/console/collections/99999999999", 422, "collection_id"),
        ("/console/distribution-points?kind=evil", 422, "kind"),
        ("/console/boundaries?type=%3Cscript%3E", 422, "type"),
        ("/console/packages?q=%00", 422, "q"),
        ("/console/packages?q=" + "x" * 201, 422, "q"),
        ("/console/boundaries?number=0", 422, "number"),
        ("/console/collections?number=two", 422, "number"),
        ("/console/advertisements?number=99999999999", 422, "number"),
    ],
)
def test_unknown_ids_and_hostile_values_get_a_page_saying_so(
    app: FastAPI, cookie: dict[str, str], path: str, status: int, words: str
) -> None:
    answer = get(app, cookie, path, status)
    assert words in answer.text and "<h1>" in answer.text
    assert "<script>" not in answer.text


def test_filter_text_is_taken_literally_and_shown_escaped(
    app: FastAPI, cookie: dict[str, str]
) -> None:
    for q in ("%", "_", "b%", "'; drop table boundaries; --"):
        page = get(app, cookie, f"/console/boundaries?{urlencode({'q': q})}").text
        assert "0 boundaries" in page, q
    hostile = get(app, cookie, "/console/packages?q=%3Cscript%3Ealert(1)%3C/script%3E").text
    assert "<script>alert" not in hostile and "&lt;script&gt;alert(1)" in hostile
    assert "q=%3Cscript%3Ealert%281%29%3C%2Fscript%3E" in hostile  # its live URL, encoded
    past_the_end = get(app, cookie, "/console/collections?number=50").text
    assert "No collection." in past_the_end and 'rel="prev"' in past_the_end


def test_the_inventory_pages_link_to_each_other(app: FastAPI, cookie: dict[str, str]) -> None:
    menu = get(app, cookie, "/console/").text
    for path in ("packages", "advertisements", "distribution-points", "boundaries", "collections"):
        assert f'href="/console/{path}"' in menu
        get(app, cookie, f"/console/{path}")
    package = get(app, cookie, f"/console/packages/{WIDE}").text
    assert 'href="/console/distribution-points/11">br7</a>' in package


def test_no_page_without_a_session(app: FastAPI) -> None:
    answer = asgi_request(app, "GET", "/console/boundaries")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/sign-in"
