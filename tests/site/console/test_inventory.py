"""The console's inventory pages in a real browser (chromium through Playwright) against a
real site server, on SQLite and PostgreSQL: from the main menu to each list, filtered from
the keyboard, from list to page and page to page, the packages list and a DP's page
following the site live. The SQLite run saves screenshots to docs/console/ (README)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.helpers.api import ok, tar_of, unique
from tests.helpers.processes import SiteProcess
from tests.site.console.conftest import DESKTOP, PHONE, screenshot, sign_in
from tests.site.mp_world import World, build

pytestmark = pytest.mark.slow  # a real site-server process and a real browser


@pytest.fixture(scope="module")
def world(site_server: SiteProcess) -> World:
    """A world whose standard DP installed the package."""
    built = build(site_server)
    std = built.register("standard_dp", built.standard_dp["name"], built.standard_dp["id"])
    built.report(std, "installed")
    for name in ("office-suite", "pdf-reader"):  # more to list (one with no version yet)
        made = ok(built.admin.post("/packages", json={"name": unique(name)}), 201)
        if name == "office-suite":
            tar = tar_of({"setup.exe": b"x" * 300_000})
            upload = {"content": tar, "headers": {"Content-Type": "application/x-tar"}}
            ok(built.admin.post(f"/packages/{made['id']}/versions", **upload), 201)
    return built


def _tag(world: World) -> str:
    """The prefix of every name the world made (`w-...-`)."""
    return str(world.package["name"]).removesuffix("-pkg")


def test_the_packages_list_follows_its_dps_and_leads_to_a_package(
    page: Page, world: World, site_server: SiteProcess
) -> None:
    sign_in(page, site_server.admin_token)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Packages").click()
    expect(page.get_by_role("heading", name="Packages", exact=True)).to_be_visible()
    search = page.get_by_label("ID or name starts with")
    search.fill(world.package["id"].lower())
    search.press("Enter")  # the filter works from the keyboard
    package_id = world.package["id"]
    row = page.locator(f'tr[data-package="{package_id}"]')
    expect(row).to_contain_text("1 of 1 DPs")
    expect(page.locator("tr[data-package]")).to_have_count(1)
    expect(page.locator("#live")).to_have_attribute("data-following", "yes")
    page.evaluate("window.notReloaded = true")

    # An administrator adds the branch DP to the package: the list follows.
    branch_id = world.branch_dp["id"]
    add = {"dp_id": branch_id}
    ok(world.admin.post(f"/packages/{package_id}/distribution-points", json=add), 201)
    expect(row).to_contain_text("1 of 2 DPs")
    assert page.evaluate("window.notReloaded") is True, "the page was reloaded"
    page.goto("/console/packages")
    expect(page.locator("tr[data-package]")).to_have_count(3)
    screenshot(page, site_server, "packages")
    page.go_back()

    row.get_by_role("link", name=package_id).click()
    expect(page.get_by_role("heading", name=re.compile(f"Package .*{package_id}"))).to_be_visible()
    page.get_by_role("link", name=world.branch_dp["name"]).click()
    expect(page.get_by_role("heading", name=re.compile("Distribution point"))).to_be_visible()


def test_a_distribution_point_page_shows_a_failure_as_it_happens(
    page: Page, world: World, site_server: SiteProcess
) -> None:
    package_id = world.package["id"]
    if world.branch_dp["id"] not in world.dp_list():  # the first test may have added it
        add = {"dp_id": world.branch_dp["id"]}
        ok(world.admin.post(f"/packages/{package_id}/distribution-points", json=add), 201)
    sign_in(page, site_server.admin_token)
    page.goto("/console/distribution-points")
    page.get_by_label("Kind").select_option("branch")
    page.get_by_label("Name starts with").fill(_tag(world))
    page.get_by_role("button", name="Filter").click()
    name = world.branch_dp["name"]
    expect(page.locator("tr[data-dp]")).to_have_count(1)
    expect(page.get_by_role("heading", name="1 distribution point(s)")).to_be_visible()
    page.get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", name=f"Distribution point {name} branch")).to_be_visible()
    protects = page.get_by_role("region", name="Protected boundaries")
    expect(protects).to_contain_text(f"{world.branch_net}.0/24")
    expect(page.locator("#live")).to_have_attribute("data-following", "yes")
    row = page.locator(f'tr[data-package="{package_id}"]')
    expect(row).to_be_visible()
    page.evaluate("window.notReloaded = true")

    # The branch DP reports it could not install the package: the row turns red, live.
    branch = world.register("branch_dp", name, world.branch_dp["id"])
    world.report(branch, "install_failed")
    expect(row).to_have_class("failing")
    expect(row.get_by_role("cell", name="install failed")).to_be_visible()
    expect(page.locator("[data-last-seen] time")).to_have_count(1)  # it has been in contact
    assert page.evaluate("window.notReloaded") is True, "the page was reloaded"
    activity = page.get_by_role("region", name="Activity")
    expect(activity).to_contain_text("not reported to the site")
    screenshot(page, site_server, "distribution-point")
    page.set_viewport_size(PHONE)
    screenshot(page, site_server, "distribution-point-phone")
    page.set_viewport_size(DESKTOP)

    row.get_by_role("link", name=package_id).click()
    expect(page.get_by_role("heading", name=re.compile(f"Package .*{package_id}"))).to_be_visible()
    failing = page.locator(f'tr[data-dp="{name}"]')
    expect(failing).to_have_class("failing")


def test_boundaries_lead_to_the_dps_protecting_them(
    page: Page, world: World, site_server: SiteProcess
) -> None:
    sign_in(page, site_server.admin_token)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Boundaries").click()
    expect(page.get_by_role("heading", name="Boundaries", exact=True)).to_be_visible()
    page.get_by_label("Type").select_option("ip_subnet")
    page.get_by_label("Value or name starts with").fill(world.branch_net + ".")
    page.get_by_role("button", name="Filter").click()
    row = page.locator(f'tr[data-boundary="{_tag(world)}-br"]')
    expect(row).to_contain_text("fast")
    expect(page.locator("tr[data-boundary]")).to_have_count(1)
    slow = {"name": unique("lyon"), "type": "ad_site", "value": "Lyon", "connection": "slow"}
    ok(world.admin.post("/boundaries", json=slow), 201)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Boundaries").click()
    expect(page.locator(f'tr[data-boundary="{slow["name"]}"]')).to_contain_text("slow")
    screenshot(page, site_server, "boundaries")
    row.get_by_role("link", name=world.branch_dp["name"]).click()
    expect(page.get_by_role("heading", name=re.compile("Distribution point"))).to_be_visible()


def test_a_collection_shows_its_members_and_advertisements(
    page: Page, world: World, site_server: SiteProcess
) -> None:
    member = unique("PC-C")
    world.client(member, host=40)  # a member, registered
    waiting = unique("PC-NEW")
    body = {"member_names": [waiting]}
    ok(world.admin.post(f"/collections/{world.collection['id']}/members", json=body))
    sign_in(page, site_server.admin_token)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Collections").click()
    page.get_by_label("Name starts with").fill(_tag(world))
    page.get_by_label("Name starts with").press("Enter")
    collection = world.collection["name"]
    members = page.locator(f'tr[data-collection="{collection}"] td').nth(1)
    expect(members).to_have_text("2")
    page.get_by_role("link", name=collection).click()
    expect(page.get_by_role("heading", name=f"Collection {collection}")).to_be_visible()
    expect(page.get_by_role("heading", name="Members (2)")).to_be_visible()
    expect(page.locator(f'tr[data-member="{member}"]')).to_contain_text("yes")
    expect(page.locator(f'tr[data-member="{waiting}"]')).to_contain_text("not yet")
    targeting = page.get_by_role("region", name="Advertisements targeting it")
    advertisement = world.advertisement["name"]
    expect(targeting.locator(f'tr[data-advertisement="{advertisement}"]')).to_contain_text(
        "protected DPs only"
    )
    screenshot(page, site_server, "collection")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Advertisements").click()
    page.get_by_label("Name starts with").fill(advertisement)
    page.get_by_role("button", name="Filter").click()
    line = page.locator(f'tr[data-advertisement="{advertisement}"]')
    expect(line.get_by_role("img")).to_be_visible()  # the small bar
    line.get_by_role("link", name=advertisement).click()
    expect(page.get_by_role("heading", name=f"Advertisement {advertisement}")).to_be_visible()
