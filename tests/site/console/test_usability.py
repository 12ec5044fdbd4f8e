"""Every console page is usable, checked in a real browser against a real site server.

For each page the main menu links to (read from templates/base.html's `nav`), the test
world's advertisement and package pages, and the sign-in page: it answers 200; it has one
h1; at phone width (390 px) the document does not scroll sideways (a wide table scrolls
inside its `.scroll` box); every input, select and textarea has a label; without
JavaScript it shows the same heading and tables; and from the keyboard alone, Tab from
the top reaches every main menu link and the page's first form control, and Enter on a
menu link follows it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

import peerdp.site.console
from tests.helpers.api import ok, unique
from tests.helpers.processes import SiteProcess
from tests.site.admin.test_status_summaries import say
from tests.site.console.conftest import DESKTOP, PHONE, sign_in
from tests.site.mp_world import World

pytestmark = pytest.mark.slow  # a real site-server process and a real browser

BASE_HTML = Path(peerdp.site.console.__file__).parent / "templates" / "base.html"


def menu_paths() -> list[str]:
    """The pages the console's main menu links to, in its order."""
    template = BASE_HTML.read_text()
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', template, re.DOTALL)
    assert nav, f"no main menu in {BASE_HTML}"
    return re.findall(r'<a href="(/console/[^"]*)"', nav[1])


MENU = menu_paths()
# The test world's own pages, named here and given their ids by the `world` fixture.
WORLD_PAGES = ["advertisement", "package"]
# Focusable form controls; a page's first one (in <main>) must be reachable by Tab.
CONTROLS = "input:not([type=hidden]), select, textarea, button"
TABS = 150  # presses of Tab before giving up on reaching something
# A long name with no place to break a line (names may have up to 200 characters).
LONG = "Office_Professional_Plus_2007_with_Service_Pack_3_and_the_Compatibility_Pack_x86"

UNLABELLED = """() => Array.from(document.querySelectorAll(
    "input:not([type=hidden]):not([type=submit]):not([type=button]), select, textarea"))
  .filter(el => {
    const named = (text) => (text || "").trim() !== "";
    if (named(el.getAttribute("aria-label"))) return false;
    const by = (el.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean);
    if (by.some(id => named(document.getElementById(id)?.textContent))) return false;
    return !Array.from(el.labels || []).some(label => named(label.textContent));
  })
  .map(el => el.outerHTML.slice(0, 120))"""

# What the page shows, to compare with and without JavaScript: its h1 and each table's
# header cells and number of rows.
OUTLINE = """() => ({
  h1: Array.from(document.querySelectorAll("h1"), h => h.textContent.trim()),
  tables: Array.from(document.querySelectorAll("table"), t => ({
    headers: Array.from(t.querySelectorAll("th"), th => th.textContent.trim()),
    rows: t.querySelectorAll("tbody tr").length,
  })),
})"""

FOCUSED = """first => {
  const el = document.activeElement;
  if (!el || el === document.body) return "";
  if (el.closest('nav[aria-label="Main"]')) return "menu " + el.getAttribute("href");
  if (first && el === document.querySelector(first)) return "first control";
  return el.tagName.toLowerCase();
}"""


@pytest.fixture(scope="module")
def branch(world: World) -> httpx.Client:
    """The world's branch DP, registered, to report its package's state."""
    return world.register("branch_dp", world.branch_dp["name"], world.branch_dp["id"])


@pytest.fixture(scope="module")
def pages(world: World, branch: httpx.Client) -> dict[str, str]:
    """The paths of every page checked: the menu's and the world's own. Every list of the
    world's pages has rows (a client waiting for content, so an on-demand request; one
    succeeded; the branch DP failing to install), and its names are long."""
    for path in (
        f"/advertisements/{world.advertisement['id']}",
        f"/packages/{world.package['id']}",
    ):
        ok(world.admin.patch(path, json={"name": f"{unique('U')}_{LONG}"}))
    waiting = world.client(f"{unique('PC')}_{LONG}", host=40)
    done = world.client(unique("PC-U"), host=41)
    say(world, waiting, "advertisement_received")
    world.locate(waiting, host=40)
    say(world, done, "program_succeeded", state="succeeded", exit_code=0)
    world.report(branch, "install_failed")
    # A quiet site from here on (the MP writes its answers in batches): a page loaded
    # twice, with and without JavaScript, shows the same rows.
    world.messages("content_location", at_least=1)
    world.messages("program_succeeded", at_least=1)
    own = {
        "advertisement": f"/console/advertisements/{world.advertisement['id']}",
        "package": f"/console/packages/{world.package['id']}",
    }
    return {**{path: path for path in MENU}, **own}


@pytest.fixture(scope="module")
def signed_in(browser: Browser, site_server: SiteProcess) -> dict[str, Any]:
    """A console session (its cookie), shared by the module's browser contexts."""
    context = browser.new_context(base_url=site_server.url, viewport=DESKTOP)  # type: ignore[arg-type]
    try:
        sign_in(context.new_page(), site_server.admin_token)
        state: dict[str, Any] = context.storage_state()  # type: ignore[assignment]
        return state
    finally:
        context.close()


def new_context(
    browser: Browser, site: SiteProcess, session: dict[str, Any] | None, **options: Any
) -> BrowserContext:
    return browser.new_context(
        base_url=site.url,
        viewport=DESKTOP,  # type: ignore[arg-type]
        storage_state=session,  # type: ignore[arg-type]
        **options,
    )


@pytest.fixture
def tab(browser: Browser, site_server: SiteProcess, signed_in: dict[str, Any]) -> Iterator[Page]:
    context = new_context(browser, site_server, signed_in)
    yield context.new_page()
    context.close()


def test_the_menu_names_every_console_page() -> None:
    assert MENU[0] == "/console/" and len(MENU) == len(set(MENU)) >= 11, MENU


@pytest.mark.parametrize("name", MENU + WORLD_PAGES)
def test_page_is_usable(
    name: str,
    tab: Page,
    pages: dict[str, str],
    browser: Browser,
    site_server: SiteProcess,
    signed_in: dict[str, Any],
) -> None:
    path = pages[name]
    check_usable(tab, path)
    check_without_javascript(tab, path, new_context(browser, site_server, signed_in,
                                                     java_script_enabled=False))  # fmt: skip
    check_keyboard(tab, path)


def test_sign_in_page_is_usable(browser: Browser, site_server: SiteProcess) -> None:
    context = new_context(browser, site_server, None)
    try:
        page = context.new_page()
        check_usable(page, "/console/sign-in")
        check_without_javascript(
            page,
            "/console/sign-in",
            new_context(browser, site_server, None, java_script_enabled=False),
        )
        page.goto("/console/sign-in")
        credential = page.get_by_label("Admin credential")
        expect(credential).to_be_focused()  # autofocus: type the credential at once
        page.keyboard.press("Tab")
        expect(page.get_by_role("button", name="Sign in")).to_be_focused()
        page.keyboard.press("Shift+Tab")
        expect(credential).to_be_focused()
    finally:
        context.close()


# -- the checks -----------------------------------------------------------------------


def check_usable(page: Page, path: str) -> None:
    """Answers 200, one h1, every field labelled, no sideways scroll at 390 px."""
    answer = page.goto(path)
    assert answer is not None and answer.status == 200, f"{path}: {answer and answer.status}"
    expect(page.locator("h1")).to_have_count(1)
    assert page.evaluate(UNLABELLED) == [], f"{path}: fields without a label"
    for viewport in (PHONE, DESKTOP):
        page.set_viewport_size(viewport)  # type: ignore[arg-type]
        wide = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert wide[0] <= wide[1], f"{path} scrolls sideways at {viewport['width']} px: {wide}"


def check_without_javascript(page: Page, path: str, context: BrowserContext) -> None:
    """Without JavaScript the page shows the same heading and tables."""
    try:
        bare = context.new_page()
        answer = bare.goto(path)
        assert answer is not None and answer.status == 200
        page.goto(path)
        assert bare.evaluate(OUTLINE) == page.evaluate(OUTLINE), path
    finally:
        context.close()


def check_keyboard(page: Page, path: str) -> None:
    """Tab from the top reaches every menu link and the first form control of <main>;
    the first Tab stop skips the menu; Enter on a menu link (to another page) follows it."""
    page.goto(path)
    first = f"main :is({CONTROLS})"
    has_control = page.locator(first).count() > 0
    reached: dict[str, int] = {}
    wanted = {f"menu {href}" for href in MENU} | ({"first control"} if has_control else set())
    for presses in range(1, TABS + 1):
        page.keyboard.press("Tab")
        reached.setdefault(page.evaluate(FOCUSED, first), presses)
        if wanted <= reached.keys():
            break
    assert wanted <= reached.keys(), f"{path}: Tab never reached {sorted(wanted - reached.keys())}"

    page.goto(path)  # the first Tab stop skips the menu, to the page's own content
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to the page's content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    if page.locator(f"main :is(a[href], {CONTROLS})").count():
        inside = page.evaluate(
            "() => document.querySelector('main').contains(document.activeElement)"
        )
        assert inside, f"{path}: Tab after skipping the menu is not in <main>"

    target = next(href for href in MENU if href != path)
    page.goto(path)
    for _ in range(reached[f"menu {target}"]):
        page.keyboard.press("Tab")
    expect(page.locator(f'nav[aria-label="Main"] a[href="{target}"]')).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(target) + "$"))


def test_a_refresh_keeps_the_keyboards_place_and_a_form_being_filled(
    tab: Page,
    pages: dict[str, str],
    world: World,
    branch: httpx.Client,
) -> None:
    """The package page refreshes its DP list (and its forms) as the site changes: the
    focused button stays focused, and a choice made in the Add form stays made (pressing
    Enter on Add must not add the DP that happened to be first)."""
    extra = [
        ok(world.admin.post("/distribution-points", json={"name": unique(f"extra{n}"),
                                                           "kind": "standard"}), 201)
        for n in (1, 2)
    ]  # fmt: skip
    tab.goto(pages["package"])
    live = tab.locator("#live")
    expect(live).to_have_attribute("data-following", "yes")
    tab.get_by_label("Add a distribution point").select_option(str(extra[1]["id"]))
    retry = tab.get_by_role("button", name=f"Retry on {world.branch_dp['name']}")
    retry.focus()
    refreshed = live.get_attribute("data-refreshed")

    # Another administrator puts the package on one of the new DPs.
    added = {"dp_id": extra[0]["id"]}
    ok(world.admin.post(f"/packages/{world.package['id']}/distribution-points", json=added), 201)
    expect(tab.locator(f'tr[data-dp="{extra[0]["name"]}"]')).to_be_visible()
    expect(live).not_to_have_attribute("data-refreshed", refreshed or "")
    expect(retry).to_be_focused()
    expect(tab.get_by_label("Add a distribution point")).to_have_value(str(extra[1]["id"]))
