"""The status message viewer, the explain page and the audit log in a real browser against
a real site server, on SQLite and PostgreSQL: the filters narrow the rows to what the API
answers for the same filters, the follow mode shows a new message at the top without
reloading, the explain page shows the trace of a client whose decision is known, and the
audit log shows an action just done. The SQLite run saves the screenshots (README)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.helpers.api import ok, unique
from tests.helpers.processes import SiteProcess
from tests.site.admin.test_status_summaries import say
from tests.site.console.conftest import DESKTOP, PHONE, screenshot, sign_in
from tests.site.mp_world import World

pytestmark = pytest.mark.slow  # a real site-server process and a real browser


def _api_ids(built: World, **params: Any) -> list[int]:
    rows = ok(
        built.admin.get("/status-messages", params={"newest": "true", "limit": 100, **params})
    )
    return [row["id"] for row in rows]


def _shown_ids(page: Page) -> list[int]:
    ids = page.locator("table.messages tbody tr[data-id]").evaluate_all(
        "rows => rows.map(r => Number(r.dataset.id))"
    )
    return list(ids)


def test_filters_narrow_the_rows_and_follow_shows_new_messages_without_reloading(
    page: Page,
    world: World,
    site_server: SiteProcess,
) -> None:
    name, other = unique("PC-MSG"), unique("PC-OTHER")
    client, second = world.client(name, host=40), world.client(other, host=41)
    say(world, client, "advertisement_received")
    say(world, client, "program_failed", state="failed", exit_code=1603, detail="MSI 1603")
    say(world, second, "program_failed", state="failed", exit_code=2)
    sign_in(page, site_server.admin_token)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Status messages").click()
    expect(page.get_by_role("heading", name="Status messages", exact=True)).to_be_visible()
    assert _shown_ids(page) == _api_ids(world)

    page.get_by_label("Component").select_option("client")
    page.get_by_label("Severity").select_option("error")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"component=client&severity=error$"))
    errors = _api_ids(world, component="client", severity="error")
    assert _shown_ids(page) == errors and len(errors) >= 2
    expect(page.locator("tr.sev-row-error").first).to_contain_text("error")

    page.get_by_label("Client").fill(name)
    page.get_by_role("button", name="Show").click()
    mine = _api_ids(world, component="client", severity="error", client_name=name)
    assert _shown_ids(page) == mine and len(mine) == 1
    expect(page.get_by_role("cell", name="MSI 1603")).to_be_visible()

    # The time fields take the browser's local time (Paris) and send UTC.
    expect(page.locator("[data-zone]").first).to_have_text("(local time)")
    page.goto("/console/status-messages?client=" + name)
    # Whole seconds, never :00 (a datetime-local field drops zero seconds from its value).
    start = (datetime.now(UTC) + timedelta(hours=1)).replace(second=7, microsecond=0)
    local = page.evaluate(
        "iso => { const d = new Date(iso); const p = n => String(n).padStart(2, '0');"
        " return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' +"
        " p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds()); }",
        start.isoformat(),
    )
    page.get_by_label("From").fill(local)
    page.get_by_role("button", name="Show").click()
    sent = parse_qs(urlsplit(page.url).query)
    assert sent["from"] == [start.strftime("%Y-%m-%dT%H:%M:%S.000Z")], sent
    assert _shown_ids(page) == [] and "to" not in sent, "empty fields are not sent"
    expect(page.get_by_label("From")).to_have_value(local)  # shown back in local time

    # Follow: a new message of this client comes on top, one of another client does not.
    page.goto(f"/console/status-messages?client={name}&follow=1")
    live = page.locator("#live")
    expect(live).to_have_attribute("data-following", "yes")
    page.evaluate("window.notReloaded = true")
    before = _shown_ids(page)
    say(world, second, "program_started")
    say(world, client, "program_succeeded", state="succeeded", exit_code=0, detail="done again")
    first = page.locator("table.messages tbody tr").first
    expect(first).to_contain_text("program_succeeded", timeout=15_000)
    expect(first).to_contain_text("done again")
    assert _shown_ids(page) == _api_ids(world, client_name=name)
    assert _shown_ids(page)[1:] == before
    assert page.evaluate("window.notReloaded") is True, "the page was reloaded"
    expect(page.get_by_role("cell", name=other)).to_have_count(0)
    # Content-location answers (written in batches) are followed too.
    world.locate(client, host=40)
    expect(first).to_contain_text("content_location", timeout=15_000)
    assert page.evaluate("window.notReloaded") is True
    page.goto(f"/console/status-messages?client={name}")
    screenshot(page, site_server, "status-messages")
    page.set_viewport_size(PHONE)
    expect(page.get_by_role("button", name="Show")).to_be_in_viewport()
    screenshot(page, site_server, "status-messages-phone")
    page.set_viewport_size(DESKTOP)
    # A client's message about an advertisement leads to why it got its answer.
    page.get_by_role("link", name=f"Explain {name}'s content location").first.click()
    expect(page.get_by_role("region", name="Decision")).to_contain_text("answered with")


def test_explain_shows_the_trace_of_a_client_whose_decision_is_known(
    page: Page,
    world: World,
    site_server: SiteProcess,
) -> None:
    name = unique("PC-EXPLAIN")
    world.client(name, host=50)
    params = {"client": name, "advertisement_id": world.advertisement["id"]}
    expected = ok(world.admin.get("/explain", params=params))
    sign_in(page, site_server.admin_token)
    page.goto("/console/explain")
    page.get_by_label("Client name").fill(name)
    page.get_by_label("Advertisement").select_option(label=world.advertisement["name"])
    page.get_by_role("button", name="Explain").click()
    decision = page.get_by_role("region", name="Decision")
    # On a protected branch with only the head office's DP holding the package: the MP
    # adds the branch DP on demand and answers nothing yet (tests/site/admin/test_explain).
    assert expected["reason"] in ("on_demand_triggered", "on_demand_in_progress")
    expect(decision).to_contain_text(expected["summary"])
    steps = page.get_by_role("region", name="Steps").get_by_role("listitem")
    expect(steps).to_have_count(len(expected["trace"]))  # each line, sub-lines nested
    expect(steps.last).to_have_text(expected["trace"][-1])
    for line in expected["trace"]:
        expect(steps.filter(has_text=line.strip()).first).to_be_visible()
    considered = page.get_by_role("region", name="Distribution points considered")
    std = considered.get_by_role("row").filter(has_text=world.standard_dp["name"])
    expect(std).to_contain_text("dropped")
    expect(std).to_contain_text("protected")
    screenshot(page, site_server, "explain")

    page.get_by_label("Client name").fill(unique("PC-NOWHERE"))
    page.get_by_role("button", name="Explain").click()
    expect(page.get_by_role("alert")).to_contain_text("has not registered")


def test_the_audit_log_shows_an_action_just_done(
    page: Page,
    world: World,
    site_server: SiteProcess,
) -> None:
    sign_in(page, site_server.admin_token)
    package_id, std = world.package["id"], world.standard_dp["name"]
    page.goto(f"/console/packages/{package_id}")
    page.get_by_role("button", name=f"Redistribute on {std}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Sent again: {std}")
    refused = world.admin.post(
        f"/packages/{package_id}/distribution-points", json={"dp_id": 2**31 - 1}
    )
    assert refused.status_code in (404, 409, 422), refused.text

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    newest = page.locator("tbody tr").first
    expect(newest).to_contain_text(f"/api/v1/packages/{package_id}/distribution-points")
    expect(newest).to_contain_text(str(refused.status_code))
    done = page.locator("tbody tr").nth(1)
    expect(done).to_contain_text(f"/console/packages/{package_id}/distribution-points/")
    expect(done).to_contain_text("/packages/{package_id}/distribution-points/{dp_id}/refresh")
    expect(done).to_contain_text("admin-token")
    expect(done.get_by_role("cell", name="200", exact=True)).to_be_visible()
    screenshot(page, site_server, "audit")

    page.get_by_label("Status").select_option("2xx")
    page.get_by_role("button", name="Show").click()
    statuses = page.locator("tbody tr td:last-child").all_inner_texts()
    assert statuses and all(s.startswith("2") for s in statuses), statuses
    expect(page.locator("tbody tr").first).to_contain_text("/retry")
