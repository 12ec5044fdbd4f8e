"""The console in a real browser (chromium through Playwright) against a real site server,
on SQLite and PostgreSQL: sign-in, the dashboard, an advertisement's page following its
clients live, actions on a package's DP list checked through the API, a read-only account,
forged forms, sign-out. The SQLite run saves screenshots to docs/console/ (README)."""

from __future__ import annotations

import re
import socket
import time

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.helpers.api import ok, unique
from tests.helpers.processes import SiteProcess
from tests.site.admin.test_status_summaries import say
from tests.site.console.conftest import DESKTOP, PHONE, new_account, screenshot, sign_in
from tests.site.mp_world import World

pytestmark = pytest.mark.slow  # a real site-server process and a real browser


def test_an_advertisement_page_follows_its_clients_without_reloading(
    page: Page, world: World, site_server: SiteProcess
) -> None:
    sign_in(page, site_server.admin_token)
    adv = world.advertisement["name"]
    page.get_by_role("link", name=adv).click()
    expect(page.get_by_role("heading", name=f"Advertisement {adv}")).to_be_visible()
    live = page.locator("#live")
    expect(live).to_have_attribute("data-following", "yes")
    page.evaluate("window.notReloaded = true")
    count = page.locator('[data-count="policy_received"]')
    expect(count).to_have_text("0")

    names = [unique("PC-A"), unique("PC-B")]
    a, b = world.client(names[0], host=20), world.client(names[1], host=21)
    say(world, a, "advertisement_received")
    say(world, b, "advertisement_received")
    expect(count).to_have_text("2")
    # The first attempts find no content: the MP provisions the branch DP on demand (its
    # answers are written in batches, and the page hears of them too).
    world.locate(a, host=20)
    waiting = page.locator('[data-count="waiting_for_content"]')
    expect(waiting).to_have_text("1", timeout=15_000)
    expect(page.get_by_role("cell", name="on_demand_triggered")).to_be_visible()
    say(world, b, "program_succeeded", state="succeeded", exit_code=0)
    expect(page.locator('[data-count="succeeded"]')).to_have_text("1")
    assert page.evaluate("window.notReloaded") is True, "the page was reloaded"
    # Times are the browser's local time (Paris here), UTC in the HTML.
    moment = page.locator("td time").first
    utc = moment.get_attribute("datetime") or ""
    local = page.evaluate(f"new Date({utc!r}).toLocaleString()")
    expect(moment).to_have_text(local)
    assert "UTC" not in local and "+00:00" in utc
    screenshot(page, site_server, "advertisement")

    page.get_by_label("Show clients").select_option("succeeded")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("heading", name="Clients succeeded (1)")).to_be_visible()
    expect(page.get_by_role("cell", name=names[1], exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name=names[0], exact=True)).to_have_count(0)

    page.goto("/console/")
    deployments = page.get_by_role("region", name="Deployments")
    line = deployments.get_by_role("listitem").filter(has_text=adv)
    expect(line).to_contain_text("1 of 2 succeeded")  # b succeeded, a waits for content
    queue = page.get_by_role("region", name="On-demand queue")
    expect(queue.get_by_role("cell", name=world.branch_dp["name"])).to_be_visible()
    expect(queue.get_by_role("cell", name=names[0])).to_be_visible()


def test_package_actions_take_effect_through_the_service_code(
    page: Page, world: World, site_server: SiteProcess
) -> None:
    package_id = world.package["id"]
    branch_name, branch_id = world.branch_dp["name"], world.branch_dp["id"]
    extra = ok(
        world.admin.post(
            "/distribution-points",
            json={"name": unique("extra"), "kind": "standard", "url": "http://127.0.0.1:9"},
        ),
        201,
    )
    sign_in(page, site_server.admin_token)
    page.goto(f"/console/packages/{package_id}")
    page.get_by_label("Add a distribution point").select_option(str(extra["id"]))
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text(f"Added: {extra['name']}")
    # Added (its push then fails at once: nothing listens at its URL).
    assert world.dp_list()[extra["id"]]["state"] in ("install_pending", "install_retrying")

    # A failed row: the on-demand branch DP (added by the first test's client) gives up.
    branch = world.register("branch_dp", branch_name, branch_id)
    world.report(branch, "install_failed")
    page.goto("/console/")
    troubled = page.get_by_role("region", name="Distribution points needing attention")
    expect(troubled.get_by_role("cell", name=branch_name)).to_be_visible()
    expect(troubled.get_by_role("cell", name="install failed")).to_be_visible()
    screenshot(page, site_server, "dashboard")
    page.set_viewport_size(PHONE)
    screenshot(page, site_server, "dashboard-phone")
    page.set_viewport_size(DESKTOP)
    page.goto(f"/console/packages/{package_id}")
    page.get_by_role("button", name=f"Retry on {branch_name}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Sent again: {branch_name}")
    row = world.dp_list()[branch_id]
    assert (row["state"], row["attempts"]) == ("install_pending", 0)
    screenshot(page, site_server, "package")

    page.get_by_role("button", name=f"Remove from {extra['name']}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Removing: {extra['name']}")
    assert world.dp_list()[extra["id"]]["state"] in ("removal_pending", "removal_retrying")

    # Removing it again is refused by the same code as the API's, with its reason.
    retry_path = f"/console/packages/{package_id}/distribution-points/{extra['id']}/retry"
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    origin = {"Origin": site_server.url}  # as the browser's own forms send it
    answer = page.request.post(retry_path, form={"csrf_token": token or ""}, headers=origin)
    assert answer.status == 409 and "only an installed" in answer.text()

    audit = ok(world.admin.get("/audit", params={"path_prefix": "/console/packages/"}))
    done = {(e["resource"], e["status"]) for e in audit if package_id in e["path"]}
    assert {
        ("/packages/{package_id}/distribution-points", 200),
        ("/packages/{package_id}/distribution-points/{dp_id}/refresh", 200),
        ("/packages/{package_id}/distribution-points/{dp_id}", 200),
        ("/packages/{package_id}/distribution-points/{dp_id}/refresh", 409),
    } <= done
    assert {e["who"] for e in audit} == {"admin-token"}


def test_a_read_only_account_sees_no_action_and_is_refused_one(
    page: Page, world: World, site_server: SiteProcess
) -> None:
    account = new_account(world, "read_only")
    sign_in(page, account["token"])
    expect(page.locator("header")).to_contain_text(f"{account['name']} (read only)")
    package_id = world.package["id"]
    page.goto(f"/console/packages/{package_id}")
    expect(page.get_by_role("heading", name=re.compile("Distribution points"))).to_be_visible()
    expect(page.locator("form[action*='distribution-points']")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^(Add|Retry|Remove)"))).to_have_count(0)

    # The server refuses the form anyway, by the API's role table, and logs the attempt.
    before = world.dp_list()
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    add = f"/console/packages/{package_id}/distribution-points"
    form = {"csrf_token": token or "", "dp_id": "1"}
    answer = page.request.post(add, form=form, headers={"Origin": site_server.url})
    assert answer.status == 403 and "needs the operator role" in answer.text()
    assert world.dp_list() == before
    [entry] = ok(world.admin.get("/audit", params={"who": account["name"]}))
    assert (entry["path"], entry["status"]) == (add, 403)

    # Revoking the account ends its session at its next request.
    ok(world.admin.delete(f"/admin-accounts/{account['id']}"))
    page.goto(f"/console/packages/{package_id}")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))


def _signed_in_client(site: SiteProcess) -> tuple[httpx.Client, str]:
    """An httpx client holding a console session (signed in as a browser would)."""
    client = httpx.Client(base_url=site.url, headers={"Origin": site.url}, timeout=30)
    answer = client.post("/console/sign-in", data={"credential": site.admin_token})
    assert answer.status_code == 303, answer.text
    page = client.get("/console/")
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    return client, found[1]


def test_forged_forms_are_refused_and_change_nothing(
    world: World, site_server: SiteProcess
) -> None:
    client, token = _signed_in_client(site_server)
    package_id, std_id = world.package["id"], world.standard_dp["id"]
    retry = f"/console/packages/{package_id}/distribution-points/{std_id}/retry"
    before = world.dp_list()[std_id]

    no_token = client.post(retry, data={})
    assert no_token.status_code == 403
    assert "carries no CSRF token" in no_token.text and "Nothing was changed" in no_token.text
    wrong = client.post(retry, data={"csrf_token": token + "x"})
    assert wrong.status_code == 403 and "is not this session" in wrong.text
    elsewhere = client.post(
        retry, data={"csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert elsewhere.status_code == 403 and "evil.example" in elsewhere.text
    del client.headers["Origin"]
    nameless = client.post(retry, data={"csrf_token": token})
    assert nameless.status_code == 403 and "names no origin" in nameless.text
    forged_sign_in = httpx.post(
        site_server.url + "/console/sign-in",
        data={"credential": site_server.admin_token},
        headers={"Origin": "https://evil.example"},
    )
    assert forged_sign_in.status_code == 403 and "set-cookie" not in forged_sign_in.headers
    assert world.dp_list()[std_id] == before


def test_session_cookie_and_sign_out(
    page: Page, world: World, site_server: SiteProcess, browser: Browser
) -> None:
    wrong = page
    wrong.goto("/console/sign-in")
    wrong.get_by_label("Admin credential").fill("not-a-credential")
    wrong.get_by_role("button", name="Sign in").click()
    expect(wrong.get_by_role("alert")).to_contain_text("wrong admin token")

    sign_in(page, site_server.admin_token)
    [cookie] = page.context.cookies()
    assert (cookie["name"], cookie["path"], cookie["httpOnly"], cookie["sameSite"]) == (
        "peerdp_console",
        "/console",
        True,
        "Strict",
    )
    assert cookie["secure"] is False  # the test site serves plain HTTP
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.context.cookies() == []

    # The session is gone on the server: its cookie, replayed, signs nobody in.
    replay = httpx.get(site_server.url + "/console/", cookies={"peerdp_console": cookie["value"]})
    assert replay.status_code == 303 and replay.headers["location"] == "/console/sign-in"
    events = httpx.get(site_server.url + "/console/events")
    assert events.status_code == 401


def test_open_event_streams_hold_no_thread(world: World, site_server: SiteProcess) -> None:
    """More live pages open than the server has worker threads (40): the pages and the
    API still answer, and each stream hears of a change."""
    client, _ = _signed_in_client(site_server)
    cookie = client.cookies["peerdp_console"]
    host, port = site_server.url.removeprefix("http://").split(":")
    streams = []
    try:
        for _ in range(50):
            sock = socket.create_connection((host, int(port)), timeout=10)
            request = (
                f"GET /console/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Cookie: peerdp_console={cookie}\r\nAccept: text/event-stream\r\n\r\n"
            )
            sock.sendall(request.encode())
            streams.append(sock)
        for sock in streams:
            head = sock.recv(4096).decode()
            assert head.startswith("HTTP/1.1 200") and "text/event-stream" in head, head
        started = time.monotonic()
        assert client.get("/console/").status_code == 200
        ok(world.admin.get(f"/advertisements/{world.advertisement['id']}/status"))
        assert time.monotonic() - started < 5
        say(world, world.client(unique("PC-S"), host=30), "advertisement_received")
        for sock in streams:
            heard = b""
            while b"event: change" not in heard:
                chunk = sock.recv(4096)
                assert chunk, "the stream closed"
                heard += chunk
    finally:
        for sock in streams:
            sock.close()
