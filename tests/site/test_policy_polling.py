"""Policy answers carry their version as an ETag and answer 304 to a caller that holds it;
the site's policy-polling setting through the admin API and `peerdp site policy-polling`.

On SQLite and PostgreSQL (the `site_server` fixture runs each module on both). The
setting is the site's: every test here that changes it puts long-polling back.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.cli.support import Cli
from tests.helpers.api import ok, unique
from tests.helpers.processes import SiteProcess
from tests.site.admin_support import refused
from tests.site.mp_world import World, build

pytestmark = pytest.mark.slow  # a real site-server process

PATH = "/site/policy-polling"


@pytest.fixture
def long_poll_after(site_server: SiteProcess) -> Iterator[httpx.Client]:
    """The admin API; the site is back to long-polling after the test."""
    with site_server.admin() as admin:
        yield admin
        ok(admin.put(PATH, json={"mode": "long_poll"}))


def _answers(site: SiteProcess, status: int) -> float:
    """How many policy answers of `status` the site has sent (its /metrics)."""
    text = httpx.get(site.url + "/metrics").text
    found = re.search(rf'^peerdp_mp_policy_answers_total{{status="{status}"}} (\S+)$', text, re.M)
    return float(found[1]) if found else 0.0


# -- ETag and 304 -------------------------------------------------------------------------


def test_a_client_holding_the_current_version_gets_304_without_a_body(
    site_server: SiteProcess,
) -> None:
    world = build(site_server)
    client = world.client(unique("PC-ETAG"))
    first = client.get("/policy")
    policy = ok(first)
    version = policy["version"]
    assert first.headers["etag"] == f'"{version}"'

    before = _answers(site_server, 304)
    same = client.get("/policy", headers={"If-None-Match": f'"{version}"'})
    assert same.status_code == 304 and same.content == b""
    assert same.headers["etag"] == f'"{version}"'
    # A list of tags, a weak tag and `*` name it too.
    for tag in (f'"0", "{version}"', f'W/"{version}"', "*"):
        assert client.get("/policy", headers={"If-None-Match": tag}).status_code == 304
    assert _answers(site_server, 304) == before + 4

    other = client.get("/policy", headers={"If-None-Match": f'"{version + 1}"'})
    assert ok(other)["version"] == version and other.headers["etag"] == f'"{version}"'


def test_a_long_poll_answers_304_at_its_timeout_and_200_with_the_new_etag_on_a_change(
    site_server: SiteProcess,
) -> None:
    world = build(site_server)
    name = unique("PC-WAIT")
    client = world.client(name)
    version = ok(client.get("/policy"))["version"]
    held = {"If-None-Match": f'"{version}"'}
    timed_out = client.get("/policy", params={"since": version, "wait": 1}, headers=held)
    assert timed_out.status_code == 304 and timed_out.content == b""

    woken: dict[str, httpx.Response] = {}
    waiter = threading.Thread(
        target=lambda: woken.update(
            answer=client.get("/policy", params={"since": version, "wait": 120}, headers=held)
        )
    )
    waiter.start()
    _new_advertisement(world)  # the client's policy changes
    waiter.join(60)
    answer = woken["answer"]
    changed = ok(answer)
    assert changed["version"] > version
    assert answer.headers["etag"] == f'"{changed["version"]}"'
    assert changed["signature"]


def test_a_dp_policy_carries_an_etag_too(site_server: SiteProcess) -> None:
    world = build(site_server)
    dp = world.register("branch_dp", unique("BR-DP"), dp_id=world.branch_dp["id"])
    answer = dp.get("/policy")
    assert answer.headers["etag"] == f'"{ok(answer)["version"]}"'
    assert "polling" not in answer.json(), "only clients are told how to poll"


def _new_advertisement(world: World) -> None:
    ok(
        world.admin.post(
            "/advertisements",
            json={
                "name": unique("adv"),
                "package_id": world.package["id"],
                "program_name": world.advertisement["program_name"],
                "collection_id": world.collection["id"],
            },
        ),
        201,
    )


# -- the setting through the admin API ---------------------------------------------------


def test_the_setting_is_long_poll_until_changed_and_clients_are_told_it(
    site_server: SiteProcess, long_poll_after: httpx.Client
) -> None:
    admin = long_poll_after
    assert ok(admin.get(PATH))["mode"] == "long_poll"
    world = build(site_server)
    client = world.client(unique("PC-SET"))
    policy = ok(client.get("/policy"))
    assert policy["polling"] == {"mode": "long_poll"}

    woken: dict[str, Any] = {}
    since = {"since": policy["version"], "wait": 120}
    waiter = threading.Thread(target=lambda: woken.update(ok(client.get("/policy", params=since))))
    waiter.start()
    body = {"mode": "interval", "interval_s": 3600, "randomise_s": 900}
    answer = ok(admin.put(PATH, json=body))
    waiter.join(60)
    assert answer == {**body, "description": answer["description"]}
    assert "every 1h plus up to 15m at random" in answer["description"]
    assert woken["polling"] == body, "a long-polling client learns of it at once"
    assert woken["version"] > policy["version"]
    assert ok(admin.get(PATH)) == answer

    [message] = [
        m
        for m in ok(admin.get("/status-messages", params={"type": "policy_polling_changed"}))
        if "every 1h plus up to 15m" in m["detail"]
    ]
    assert message["component"] == "site"

    ok(admin.put(PATH, json={"mode": "long_poll"}))
    assert ok(client.get("/policy"))["polling"] == {"mode": "long_poll"}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"mode": "interval", "interval_s": 59}, ["interval_s", "at least 1m"]),
        ({"mode": "interval", "interval_s": 3600, "randomise_s": 3601}, ["randomise_s", "between"]),
        ({"mode": "interval", "interval_s": 3600, "randomise_s": -1}, ["randomise_s"]),
        ({"mode": "interval"}, ["interval_s", "required"]),
        ({"mode": "long_poll", "interval_s": 3600}, ["interval_s", "only with mode 'interval'"]),
        ({"mode": "sometimes"}, ["mode"]),
        ({"mode": "interval", "interval_s": "1h"}, ["interval_s", "whole number"]),
        ({"interval_s": 3600}, ["mode", "required"]),
        ({"mode": "interval", "interval_s": 3600, "extra": 1}, ["extra"]),
    ],
)
def test_bad_settings_are_refused_and_change_nothing(
    site_server: SiteProcess, long_poll_after: httpx.Client, body: dict[str, Any], words: list[str]
) -> None:
    admin = long_poll_after
    ok(admin.put(PATH, json={"mode": "interval", "interval_s": 7200, "randomise_s": 60}))
    refused(admin.put(PATH, json=body), 422, *words)
    assert ok(admin.get(PATH))["interval_s"] == 7200


# -- the command line --------------------------------------------------------------------


def test_the_command_shows_and_sets_the_setting(
    site_server: SiteProcess, long_poll_after: httpx.Client
) -> None:
    cli = Cli.for_site(site_server)
    assert "long-poll" in cli.ok("site", "policy-polling")
    shown = cli.ok("site", "policy-polling", "--mode", "interval", "--interval", "1h",
                   "--randomise", "15m")  # fmt: skip
    assert "every 1h plus up to 15m at random" in shown
    assert "100,000 clients make about 25 policy requests a second" in shown
    assert cli.json("site", "policy-polling") == {
        "mode": "interval",
        "interval_s": 3600,
        "randomise_s": 900,
        "description": ok(long_poll_after.get(PATH))["description"],
    }
    hourly = cli.json("site", "policy-polling", "--interval", "1h", "--randomise", "0")
    assert (hourly["mode"], hourly["interval_s"], hourly["randomise_s"]) == ("interval", 3600, 0)
    assert "about 28 policy requests" in cli.ok("site", "policy-polling")
    assert "long-poll" in cli.ok("site", "policy-polling", "--mode", "long_poll")


def test_the_command_refuses_bad_values_in_one_line(
    site_server: SiteProcess, long_poll_after: httpx.Client
) -> None:
    cli = Cli.for_site(site_server)
    too_short = cli.fails("site", "policy-polling", "--interval", "30s")
    assert "interval_s: must be at least 1m (got 30)" in too_short
    wide = cli.fails("site", "policy-polling", "--interval", "1h", "--randomise", "2h")
    assert "randomise_s" in wide
    assert "interval_s" in cli.fails("site", "policy-polling", "--mode", "long_poll",
                                     "--interval", "1h")  # fmt: skip
    typo = cli.run("site", "policy-polling", "--interval", "an hour")
    assert typo.returncode == 2 and "is not a duration" in typo.stderr
    mode = cli.run("site", "policy-polling", "--mode", "hourly")
    assert mode.returncode == 2
    assert "long-poll" in cli.ok("site", "policy-polling"), "nothing was changed"
