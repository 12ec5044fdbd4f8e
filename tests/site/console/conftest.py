"""A real chromium (Debian's, at /usr/bin/chromium: `.ci/run` installs it) driven by
Playwright for Python; Playwright's own browser download is never used. The browser tests'
shared fixtures (a world on the module's site server, a page) and helpers."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.helpers.api import ok, unique
from tests.helpers.processes import SiteProcess
from tests.site.mp_world import World, build

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "console"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists() or shutil.which("chromium"), (
        "the console's browser tests need Debian's chromium: apt-get install -y chromium"
    )
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def world(site_server: SiteProcess) -> World:
    built = build(site_server)
    std = built.register("standard_dp", built.standard_dp["name"], built.standard_dp["id"])
    built.report(std, "installed")
    return built


@pytest.fixture
def page(browser: Browser, site_server: SiteProcess) -> Iterator[Page]:
    context = browser.new_context(
        base_url=site_server.url,
        viewport=DESKTOP,  # type: ignore[arg-type]
        timezone_id="Europe/Paris",
        locale="en-GB",
    )
    opened = context.new_page()
    yield opened
    context.close()


def sign_in(page: Page, credential: str) -> None:
    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    page.get_by_label("Admin credential").fill(credential)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def screenshot(page: Page, site: SiteProcess, name: str) -> None:
    if site.db_url.startswith("sqlite"):  # one set, from one run
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def new_account(world: World, role: str) -> dict[str, Any]:
    """An administrator account of `role`, made through the API (with its secret)."""
    body = {"name": unique(role), "role": role}
    created: dict[str, Any] = ok(world.admin.post("/admin-accounts", json=body), 201)
    return created
