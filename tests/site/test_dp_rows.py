"""A DP's contact retries at once what failed only because the site could not reach it.

A standard DP that registers after a package was staged on it, that comes back up (it
tells the site so as it starts), or whose wrong URL an administrator corrects, gets what
failed meanwhile within a second or two, not at the end of the row's backoff. These run
at the site's DEFAULT settings (the first retry 30 s after a failure, doubling), so a row
left to its backoff fails them; the measured delay is printed. A row that failed for
another reason keeps its backoff.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dp.standard_support import DPProcess, Site, start_dp
from tests.helpers.api import ok, unique, wait_for
from tests.helpers.processes import SiteProcess

pytestmark = pytest.mark.slow  # real site server and DP processes

BOUND_S = 15.0  # generous, and still half the default first backoff (30 s)


@pytest.fixture
def site(site_server: SiteProcess) -> Site:
    return Site.of(site_server)


@pytest.fixture
def dps() -> Iterator[list[DPProcess]]:
    started: list[DPProcess] = []
    yield started
    for process in started:
        process.stop()


def at(message: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(message["at"])


def state_messages(site: Site, package_id: str, dp_id: int) -> list[dict[str, Any]]:
    return site.messages(package_id=package_id, dp_id=dp_id, type="package_state")


def last_with(messages: list[dict[str, Any]], state: str) -> dict[str, Any]:
    return [m for m in messages if m["state"] == state][-1]


def test_a_dp_registering_after_staging_gets_the_package_at_once(
    site: Site, dps: list[DPProcess], tmp_path: Path
) -> None:
    dp_id, token = site.standard_dp()
    package_id, _ = site.package({"app.msi": b"app" * 1000})
    site.add(package_id, dp_id)
    row = site.wait_state(package_id, dp_id, {"install_retrying"})
    assert "has not registered its URL with the site yet" in row["detail"]

    dps.append(start_dp(site.server, tmp_path / "dp", token))
    row = site.wait_state(package_id, dp_id, {"installed"}, timeout=60)
    assert row["attempts"] == 0  # counted afresh: the failure was the DP's absence
    [registered] = site.messages(dp_id=dp_id, type="machine_registered")
    messages = state_messages(site, package_id, dp_id)
    assert [m["state"] for m in messages] == ["install_retrying", "install_pending", "installed"]
    again = messages[1]["detail"]
    assert "registered with the site: sending it again now" in again, again
    assert "has not registered its URL" in again  # what had failed
    delay = (at(messages[-1]) - at(registered)).total_seconds()
    print(f"installed {delay:.2f} s after the DP registered (first backoff: 30 s)")
    assert delay < BOUND_S, f"the row waited {delay:.1f} s for its backoff"


def test_a_dp_back_up_at_the_same_url_gets_what_failed_while_it_was_down(
    site: Site, dps: list[DPProcess], tmp_path: Path
) -> None:
    dp_id, token = site.standard_dp()
    dp = start_dp(site.server, tmp_path / "dp", token)
    held, _ = site.package({"held.bin": b"held" * 1000})
    site.add(held, dp_id)
    site.wait_state(held, dp_id, {"installed"})
    assert dp.stop() == 0

    # While it is down: a removal and a new package fail, and wait for their backoff.
    ok(site.admin.delete(f"/packages/{held}/distribution-points/{dp_id}"))
    new, _ = site.package({"new.bin": b"new" * 1000})
    site.add(new, dp_id)
    assert "cannot reach" in site.wait_state(held, dp_id, {"removal_retrying"})["detail"]
    assert "cannot reach" in site.wait_state(new, dp_id, {"install_retrying"})["detail"]

    again = start_dp(site.server, dp.data_dir)  # no token: the identity is kept
    dps.append(again)
    assert again.url == dp.url  # the same URL: only its start tells the site it is back
    assert not site.messages(dp_id=dp_id, type="dp_url_changed")
    installed = site.wait_state(new, dp_id, {"installed"}, timeout=60)
    wait_for("the removal", lambda: site.row(held, dp_id) is None, 60)
    assert installed["attempts"] == 0
    assert not (again.data_dir / "content" / "manifests" / held / "1.json").exists()

    for package_id, done in ((new, "installed"), (held, "removed")):
        messages = state_messages(site, package_id, dp_id)
        retried = [m for m in messages if "started again" in m["detail"]]
        assert [m["state"] for m in retried] == [
            "install_pending" if done == "installed" else "removal_pending"
        ], messages
        assert "again now" in retried[0]["detail"]
        delay = (at(last_with(messages, done)) - at(retried[0])).total_seconds()
        print(f"{package_id} {done} {delay:.2f} s after the DP announced it was back")
        assert delay < BOUND_S


def test_a_url_an_administrator_corrects_is_tried_at_once(
    site: Site, dps: list[DPProcess], tmp_path: Path
) -> None:
    """A DP row given a URL nobody answers at (a typo in `dp set --url`), then corrected."""
    dp_id, token = site.standard_dp()
    dp = start_dp(site.server, tmp_path / "dp", token)
    dps.append(dp)
    dp_path = f"/distribution-points/{dp_id}"
    ok(site.admin.patch(dp_path, json={"url": "http://127.0.0.1:9"}))  # nothing answers there
    package_id, _ = site.package({"fix.bin": b"fix" * 1000})
    site.add(package_id, dp_id)
    assert "cannot reach" in site.wait_state(package_id, dp_id, {"install_retrying"})["detail"]

    ok(site.admin.patch(dp_path, json={"url": dp.url}))
    row = site.wait_state(package_id, dp_id, {"installed"}, timeout=60)
    assert row["attempts"] == 0
    messages = state_messages(site, package_id, dp_id)
    assert [m["state"] for m in messages] == ["install_retrying", "install_pending", "installed"]
    assert f"was given the URL {dp.url} by an administrator" in messages[1]["detail"]
    delay = (at(messages[2]) - at(messages[1])).total_seconds()
    print(f"installed {delay:.2f} s after an administrator corrected the DP's URL")
    assert delay < BOUND_S


class Refusing(http.server.BaseHTTPRequestHandler):
    """A 'DP' that answers every request 503: reachable, but refusing."""

    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_row_that_failed_for_another_reason_keeps_its_backoff(
    site: Site, refusing_url: str
) -> None:
    dp_id, token = site.standard_dp(url=refusing_url)
    package_id, _ = site.package({"x.bin": b"x" * 100})
    site.add(package_id, dp_id)
    row = site.wait_state(package_id, dp_id, {"install_retrying"})
    assert "refused to list its content: 503" in row["detail"]

    body = {"token": token, "name": unique("dp"), "url": refusing_url, "role": "standard_dp"}
    ok(httpx.post(site.server.url + "/mp/v1/register", json=body, timeout=30), 201)
    after = site.row(package_id, dp_id)
    assert after is not None
    assert (after["state"], after["attempts"], after["detail"]) == (
        "install_retrying",
        1,
        row["detail"],
    )
    messages = state_messages(site, package_id, dp_id)
    assert [m["state"] for m in messages] == ["install_retrying"]
