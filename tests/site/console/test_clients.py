"""The console's clients, a client's page, reruns and enrolment tokens in a real browser
(chromium through Playwright) against a real site server, on SQLite and PostgreSQL: each
action done in the browser and its effect checked through the API; a read-only account
sees no form and is refused one. The SQLite run saves screenshots to docs/console/."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.helpers.api import ok, unique
from tests.helpers.processes import SiteProcess
from tests.site.admin.test_status_summaries import say
from tests.site.console.conftest import DESKTOP, PHONE, new_account, screenshot, sign_in
from tests.site.mp_world import World

pytestmark = pytest.mark.slow  # a real site-server process and a real browser


def _client_id(world: World, name: str) -> int:
    [row] = ok(world.admin.get("/clients", params={"name": name}))
    return int(row["id"])


def _reruns(world: World) -> list[str | None]:
    rows = ok(
        world.admin.get(
            "/status-messages",
            params={"advertisement_id": world.advertisement["id"], "type": "advertisement_rerun"},
        )
    )
    return [row["client_name"] for row in rows]


def _failed(world: World, name: str, host: int) -> httpx.Client:
    machine = world.client(name, host=host)
    say(world, machine, "advertisement_received")
    say(world, machine, "program_failed", exit_code=1603, detail="exit code 1603")
    return machine


def test_a_client_found_in_the_list_and_acted_on_from_its_page(
    page: Page, world: World, site_server: SiteProcess
) -> None:
    name, other = unique("PC-K"), unique("PC-L")
    _failed(world, name, host=40)
    world.client(other, host=41)
    client_id = _client_id(world, name)
    adv = world.advertisement["name"]
    sign_in(page, site_server.admin_token)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Clients").click()
    expect(page.get_by_role("heading", name="Clients", exact=True)).to_be_visible()
    page.get_by_label("Name starts with").fill("pc-")  # any case
    page.get_by_role("button", name="Filter").click()
    listed = page.get_by_role("region", name=re.compile(r"client\(s\)"))
    expect(listed.get_by_role("link", name=name)).to_be_visible()
    expect(listed.get_by_role("link", name=other)).to_be_visible()
    row = listed.get_by_role("row").filter(has_text=name)
    expect(row).to_contain_text(f"{world.branch_net}.40")
    expect(row.get_by_role("cell").nth(1)).to_have_text(re.compile(r"-br$"))
    expect(row).to_contain_text("enrolled")
    screenshot(page, site_server, "clients")

    row.get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", name=f"Client {name}")).to_be_visible()
    history = page.get_by_role("region", name="Advertisements")
    line = history.get_by_role("row").filter(has_text=adv)
    expect(line).to_contain_text("failed")
    expect(line).to_contain_text("1603")
    explain = line.get_by_role("link", name=f"Explain {adv} on {name}")
    expected = f"/console/explain?client={name}&advertisement_id={world.advertisement['id']}"
    expect(explain).to_have_attribute("href", expected)
    screenshot(page, site_server, "client")
    page.set_viewport_size(PHONE)
    screenshot(page, site_server, "client-phone")
    page.set_viewport_size(DESKTOP)

    line.get_by_role("button", name=f"Rerun {adv}").click()
    expect(page.get_by_role("status")).to_contain_text(f"{adv} will run again on {name}.")
    assert name in _reruns(world)

    page.get_by_role("button", name="Allow re-enrolment").click()
    expect(page.get_by_role("status")).to_contain_text("Re-enrolment allowed")
    assert ok(world.admin.get(f"/clients/{client_id}"))["reenrol_allowed"] is True
    expect(page.get_by_role("definition").filter(has_text="re-enrolment allowed")).to_be_visible()

    page.get_by_role("link", name="Delete this client…").click()
    expect(page.get_by_role("heading", name=f"Delete client {name}?")).to_be_visible()
    page.get_by_role("button", name=f"Delete {name}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Deleted client {name}")
    expect(page.get_by_role("heading", name="Clients", exact=True)).to_be_visible()
    assert world.admin.get(f"/clients/{client_id}").status_code == 404

    audit = ok(world.admin.get("/audit", params={"path_prefix": f"/console/clients/{client_id}"}))
    assert {(e["resource"], e["status"]) for e in audit} == {
        ("/advertisements/{advertisement_id}/rerun", 200),
        ("/clients/{client_id}/reenrol", 200),
        ("/clients/{client_id}", 200),
    }
    # Gone: its page says so.
    page.goto(f"/console/clients/{client_id}")
    expect(page.get_by_role("alert")).to_contain_text(f"client {client_id} does not exist")


def _rerun_in_policy(world: World, machine: httpx.Client) -> int:
    """The advertisement's rerun as the client's policy carries it (0: none)."""
    policy = ok(machine.get("/policy"))
    [entry] = [a for a in policy["advertisements"] if a["id"] == world.advertisement["id"]]
    return int(entry["rerun"])


def test_reruns_from_the_advertisement_page_reach_the_clients(
    page: Page, world: World, site_server: SiteProcess
) -> None:
    first, second = unique("PC-F"), unique("PC-G")
    one, other = _failed(world, first, host=50), _failed(world, second, host=51)
    sign_in(page, site_server.admin_token)
    page.goto(f"/console/advertisements/{world.advertisement['id']}?state=failed")
    page.get_by_role("button", name=f"Rerun on {first}").click()
    expect(page.get_by_role("status")).to_contain_text(f"will run again on {first}.")
    rerun = _rerun_in_policy(world, one)
    assert rerun > 0 and _rerun_in_policy(world, other) == 0
    assert first in _reruns(world)

    failed = ok(world.admin.get(f"/advertisements/{world.advertisement['id']}/status"))
    count = failed["counts"]["failed"]
    assert count >= 2
    page.get_by_role("button", name=f"Rerun for all failed clients ({count})").click()
    expect(page.get_by_role("status")).to_contain_text(f"on the {count} client(s) it failed on.")
    assert _rerun_in_policy(world, one) > rerun and _rerun_in_policy(world, other) > rerun


def test_a_token_made_in_the_console_is_shown_once_and_enrols(
    page: Page, world: World, site_server: SiteProcess
) -> None:
    sign_in(page, site_server.admin_token)
    page.goto("/console/enrolment-tokens")
    page.get_by_label("Registers").select_option("client")
    page.get_by_label("Uses").fill("3")
    page.get_by_label("Expires after").fill("2")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Make token").click()
    assert answer.value.status == 200 and answer.value.headers["cache-control"] == "no-store"
    heading = page.get_by_role("heading", name=re.compile(r"^Enrolment token \d+ made$"))
    expect(heading).to_be_visible()
    token_id = int(re.findall(r"\d+", heading.inner_text())[0])
    secret = page.locator("[data-secret]").inner_text()
    assert secret.startswith("pde_") and page.url.endswith("/console/enrolment-tokens")
    made = ok(world.admin.get(f"/enrolment-tokens/{token_id}"))
    assert (made["role"], made["max_uses"], made["uses"]) == ("client", 3, 0)

    name = unique("PC-T")
    body = {"token": secret, "name": name, "ip_addresses": [f"{world.branch_net}.60"]}
    ok(httpx.post(site_server.url + "/mp/v1/register", json=body), 201)
    assert _client_id(world, name) > 0
    assert ok(world.admin.get(f"/enrolment-tokens/{token_id}"))["uses"] == 1

    page.get_by_role("link", name="Back to the enrolment tokens").click()
    expect(page.get_by_role("heading", name="Enrolment tokens")).to_be_visible()
    assert secret not in page.content()
    row = page.get_by_role("row").filter(
        has=page.get_by_role("cell", name=str(token_id), exact=True)
    )
    expect(row).to_contain_text("1 of 3")
    expect(row).to_contain_text("usable")
    screenshot(page, site_server, "enrolment-tokens")
    page.set_viewport_size(PHONE)
    screenshot(page, site_server, "enrolment-tokens-phone")
    page.set_viewport_size(DESKTOP)
    page.go_back()  # the answer page is not kept: the browser asks again, nothing shows it
    assert secret not in page.content()

    page.goto("/console/enrolment-tokens")
    page.get_by_role("button", name=f"Revoke token {token_id}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Revoked enrolment token {token_id}")
    assert world.admin.get(f"/enrolment-tokens/{token_id}").status_code == 404


def test_a_read_only_account_sees_no_client_or_token_form_and_is_refused(
    page: Page, world: World, site_server: SiteProcess
) -> None:
    name = unique("PC-R")
    _failed(world, name, host=70)
    client_id = _client_id(world, name)
    account: dict[str, Any] = new_account(world, "read_only")
    sign_in(page, account["token"])
    for path in (
        "/console/clients",
        f"/console/clients/{client_id}",
        f"/console/clients/{client_id}/delete",
        "/console/enrolment-tokens",
        f"/console/advertisements/{world.advertisement['id']}",
    ):
        page.goto(path)
        expect(page.locator("form[method=post]")).to_have_count(1)  # signing out
        expect(
            page.get_by_role("button", name=re.compile("^(Rerun|Allow|Delete|Make|Revoke)"))
        ).to_have_count(0)
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value") or ""
    origin = {"Origin": site_server.url}
    for path, form in (
        (f"/console/clients/{client_id}/delete", {}),
        (f"/console/clients/{client_id}/reenrol", {}),
        (f"/console/advertisements/{world.advertisement['id']}/rerun-failed", {}),
        ("/console/enrolment-tokens", {"role": "client"}),
    ):
        answer = page.request.post(path, form={"csrf_token": token, **form}, headers=origin)
        assert answer.status == 403 and "needs the operator role" in answer.text(), path
    assert ok(world.admin.get(f"/clients/{client_id}"))["reenrol_allowed"] is False
    audit = ok(world.admin.get("/audit", params={"who": account["name"]}))
    assert sorted(e["status"] for e in audit) == [403] * 4
