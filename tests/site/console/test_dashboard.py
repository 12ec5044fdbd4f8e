"""The dashboard's bytes today, recent errors and pulls in progress, on SQLite and
PostgreSQL: reports go through the MP's status receiver (site/mp/status.py) in-process,
and the dashboard and package pages are read through the console's routes. Then a real
branch DP process pulls a package (bandwidth-limited, so the pull takes seconds) while a
browser watches its package page follow the pull without reloading."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from playwright.sync_api import Page, expect
from sqlalchemy import Select, select, text, update

from peerdp.config import SiteSettings
from peerdp.site import deployment_status
from peerdp.site.app import create_app
from peerdp.site.console.dashboard import (
    ERRORS_SHOWN,
    dashboard,
    errors_query,
    pulls_query,
    shown,
)
from peerdp.site.context import SiteContext
from peerdp.site.mp.identity import Caller
from peerdp.site.mp.schemas import StatusBatch, StatusIn, StatusResult
from peerdp.site.mp.status import receive
from peerdp.site.status import record
from peerdp.store.models import (
    DPTrafficDay,
    PackageDistributionPoint,
    StatusMessage,
    utcnow,
)
from tests.dp.branch_support import World as BranchWorld
from tests.dp.branch_support import build as branch_world
from tests.helpers.api import ok, wait_for
from tests.helpers.asgi import asgi_request
from tests.helpers.processes import SiteProcess
from tests.site.console import conftest as console_ui
from tests.site.mp_seed import Shape, package_id, seed

# std0 is DP 1; br0, br1 are DPs 2, 3. Package 0 is on std0 and br0, package 1 on std0 and br1.
STD0 = Caller("m-std0", "standard_dp", "std0", None, 1)
BR0 = Caller("m-br0", "branch_dp", "br0", None, 2)
BR1 = Caller("m-br1", "branch_dp", "br1", None, 3)
PC0 = Caller("m0", "client", "pc0", 1, None)
P0, P1 = package_id(0), package_id(1)


@pytest.fixture
def app(tmp_path: Path, db_url: str) -> FastAPI:
    settings = {"data_dir": tmp_path / "site", "admin_token": "secret", "db": db_url}
    made = create_app(SiteSettings.model_validate(settings))
    with made.state.site.transaction() as s:
        seed(s, Shape(boundaries=2, branches=2, standard_dps=1, packages=2, clients=3), str)
    return made


def _ctx(app: FastAPI) -> SiteContext:
    ctx: SiteContext = app.state.site
    return ctx


def _send(app: FastAPI, caller: Caller, **message: object) -> StatusResult:
    return receive(_ctx(app), caller, StatusBatch(messages=[StatusIn.model_validate(message)]))


def _installing(app: FastAPI, package: str, dp_id: int) -> None:
    """Put a DP's row of a package back to install_pending, as the site does to send it."""
    table = PackageDistributionPoint
    with _ctx(app).transaction() as s:
        s.execute(
            update(table)
            .where(table.package_id == package, table.dp_id == dp_id)
            .values(state="install_pending")
        )


def _console(app: FastAPI, path: str) -> str:
    form = {"credential": "secret"}
    signed = asgi_request(app, "POST", "/console/sign-in", {"Origin": "http://app"}, data=form)
    cookie = {"Cookie": signed.headers["set-cookie"].split(";")[0]}
    answer = asgi_request(app, "GET", path, cookie)
    assert answer.status_code == 200, answer.text
    return answer.text


def _days(app: FastAPI) -> dict[tuple[int, str], tuple[int, int]]:
    with _ctx(app).db.reading() as s:
        rows = s.scalars(select(DPTrafficDay))
        return {(r.dp_id, r.day.isoformat()): (r.pulled_bytes, r.served_bytes) for r in rows}


# -- bytes today ---------------------------------------------------------------------------


def test_bytes_today_count_each_report_once_on_the_utc_day_it_arrives(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = utcnow().date()
    yesterday = today - timedelta(days=1)
    # A report received a second before midnight (UTC) counts on the day before.
    late = datetime.combine(yesterday, datetime.max.time(), tzinfo=UTC)
    monkeypatch.setattr(deployment_status, "utcnow", lambda: late)
    _installing(app, P0, 2)
    assert _send(app, BR0, type="package_state", package_id=P0, source_version=1,
                 state="installed", bytes_by_dp={"std0": 7000}).accepted == 1  # fmt: skip
    monkeypatch.undo()

    # Today: br1 pulls package 1 (3,000 from std0), and a
    # client downloads 400 of package 0 from br0, twice (two reports, each counted once).
    _installing(app, P1, 3)
    _send(app, BR1, type="package_state", package_id=P1, source_version=1, state="installed",
          bytes_by_dp={"std0": 3000})  # fmt: skip
    for _ in range(2):
        started = {"type": "program_started", "package_id": P0, "source_version": 1}
        _send(app, PC0, **started, advertisement_id=1, bytes_by_dp={"br0": 400, "nobody": 9})
    # A DP that re-reports `installed` without bytes adds nothing.
    _send(app, BR1, type="package_state", package_id=P1, source_version=1, state="installed")

    day, before = today.isoformat(), yesterday.isoformat()
    assert _days(app) == {
        (2, before): (7000, 0),
        (1, before): (0, 7000),
        (3, day): (3000, 0),
        (1, day): (0, 3000),
        (2, day): (0, 800),
    }
    traffic = dashboard(_ctx(app)).traffic
    assert traffic.day == today
    assert (traffic.pulled, traffic.served_by_branch, traffic.served_by_standard) == (
        3000,
        800,
        3000,
    )
    assert [(t.dp_name, t.pulled, t.served) for t in traffic.top] == [("br1", 3000, 0)]

    page = _console(app, "/console/")
    assert f"(UTC day {day})" in page
    assert re.search(r'data-total="pulled">2\.9 KiB<', page), "3,000 bytes"
    assert re.search(r'data-total="served-branch">800 B<', page)
    traffic_part = page.split('id="traffic"')[1].split('id="errors"')[0]
    assert '<tr data-traffic-of="br1">' in traffic_part and "br0" not in traffic_part


def test_bytes_today_are_counted_alongside_the_rows_cumulative_bytes(app: FastAPI) -> None:
    _installing(app, P0, 2)
    _send(app, BR0, type="package_state", package_id=P0, source_version=1, state="installed",
          bytes_by_dp={"std0": 5})  # fmt: skip
    with _ctx(app).db.reading() as s:
        rows = {r.dp_id: r for r in s.scalars(select(PackageDistributionPoint).where(
            PackageDistributionPoint.package_id == P0))}  # fmt: skip
        assert (rows[2].pulled_bytes, rows[1].served_bytes) == (5, 5)
    assert _days(app) == {
        (2, utcnow().date().isoformat()): (5, 0),
        (1, utcnow().date().isoformat()): (0, 5),
    }


# -- recent errors -------------------------------------------------------------------------


def test_recent_errors_show_the_newest_of_the_last_day_linking_to_the_status_messages(
    app: FastAPI,
) -> None:
    ctx = _ctx(app)
    now = utcnow()
    with ctx.transaction() as s:
        record(s, ctx.changes, component="site", source="PS1", type="old", severity="error",
               at=now - timedelta(hours=25))  # fmt: skip
        record(s, ctx.changes, component="site", source="PS1", type="just_info", at=now)
        for i in range(ERRORS_SHOWN + 3):
            at = now - timedelta(minutes=30 + i)
            record(s, ctx.changes, component="client", source=f"pc{i}", type="program_failed",
                   severity="error", client_name=f"pc{i}", at=at)  # fmt: skip
    _installing(app, P1, 3)
    failed = _send(app, BR1, type="package_state", package_id=P1, source_version=1,
                   state="install_failed", detail="disk <full>")  # fmt: skip
    assert failed.accepted == 1

    errors = dashboard(ctx).errors
    assert len(errors) == ERRORS_SHOWN
    assert errors[0].type == "package_state" and errors[0].source == "br1"
    assert errors[0].query == {"severity": "error", "package_id": P1, "dp_id": 3}
    assert [e.source for e in errors[1:]] == [f"pc{i}" for i in range(ERRORS_SHOWN - 1)]
    assert {"old", "just_info"}.isdisjoint(e.type for e in errors)

    page = _console(app, "/console/")
    errors_part = page.split('id="errors"')[1]
    assert (
        f'href="/console/status-messages?severity=error&amp;package_id={P1}&amp;dp_id=3"'
        in errors_part
    )
    assert 'href="/console/status-messages?severity=error&amp;client_name=pc0"' in errors_part
    assert "disk &lt;full&gt;" in errors_part  # escaped
    assert '<span class="muted">install_failed</span>' in errors_part


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (errors_query, "ix_status_messages_severity_at"),
        (pulls_query, "ix_package_distribution_points_pull_at"),
    ],
)
def test_recent_errors_and_pulls_are_read_through_their_indexes(
    app: FastAPI, query: Callable[[datetime], Select[Any]], index: str
) -> None:
    """Each query's plan names its index (on PostgreSQL with sequential scans priced out:
    on these few rows the planner would rightly prefer one)."""
    ctx = _ctx(app)
    with ctx.transaction() as s:
        compiled = query(utcnow()).compile(
            s.get_bind(), compile_kwargs={"render_postcompile": True}
        )
        sql, params = str(compiled), compiled.params
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("SET LOCAL enable_seqscan = off"))
            plan = s.connection().exec_driver_sql("EXPLAIN " + sql, params).scalars().all()
        else:
            positional = tuple(params[name] for name in compiled.positiontup or ())
            found = s.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + sql, positional)
            plan = [row[-1] for row in found]
    assert any(index in line for line in plan), plan


# -- pulls in progress ---------------------------------------------------------------------


def _row(app: FastAPI, package: str, dp_id: int) -> PackageDistributionPoint:
    with _ctx(app).db.reading() as s:
        row = s.get(PackageDistributionPoint, (package, dp_id))
        assert row is not None
        s.expunge(row)
        return row


def test_a_pull_in_progress_is_kept_on_its_row_shown_and_cleared_when_installed(
    app: FastAPI,
) -> None:
    ctx = _ctx(app)
    _installing(app, P0, 2)
    messages_before = _count_messages(app)
    policy, deployments = ctx.changes.generation, ctx.changes.generation_of("deployments")
    progress = {"type": "pull_progress", "package_id": P0, "source_version": 1}
    assert _send(app, BR0, **progress, bytes_done=0, bytes_total=4096).accepted == 1
    assert _send(app, BR0, **progress, bytes_done=1024, bytes_total=4096).accepted == 1
    row = _row(app, P0, 2)
    assert (row.pull_done_bytes, row.pull_total_bytes) == (1024, 4096)
    assert row.pull_bytes_per_s is not None and row.pull_bytes_per_s > 0
    assert row.pull_at is not None
    # No status message per progress report; the console woke, the MP's policies did not.
    assert _count_messages(app) == messages_before
    assert ctx.changes.generation == policy
    assert ctx.changes.generation_of("deployments") == deployments + 2

    [pull] = dashboard(ctx).pulls
    assert (pull.dp_name, pull.package_id, pull.done, pull.total) == ("br0", P0, 1024, 4096)
    board = _console(app, "/console/")
    assert '<tr data-pull-of="br0">' in board and "1.0 KiB of 4.0 KiB" in board
    package = _console(app, f"/console/packages/{P0}/live")
    assert 'data-pull-done="1024" data-pull-total="4096"' in package
    assert '<progress max="4096" value="1024"' in package

    _send(app, BR0, type="package_state", package_id=P0, source_version=1, state="installed")
    row = _row(app, P0, 2)
    assert (row.pull_done_bytes, row.pull_total_bytes, row.pull_at) == (None, None, None)
    # A report arriving after the outcome changes nothing (accepted: the DP did no wrong).
    assert _send(app, BR0, **progress, bytes_done=4096, bytes_total=4096).accepted == 1
    assert _row(app, P0, 2).pull_at is None
    assert dashboard(ctx).pulls == []
    assert "data-pull" not in _console(app, f"/console/packages/{P0}/live")


def test_a_failed_attempt_clears_its_pull(app: FastAPI) -> None:
    _installing(app, P0, 2)
    progress = {"type": "pull_progress", "package_id": P0, "source_version": 1}
    _send(app, BR0, **progress, bytes_done=10, bytes_total=20)
    _send(app, BR0, type="package_state", package_id=P0, source_version=1,
          state="install_retrying", detail="cut")  # fmt: skip
    assert _row(app, P0, 2).pull_done_bytes is None


def test_pull_progress_from_others_or_incomplete_is_refused(app: FastAPI) -> None:
    _installing(app, P0, 2)
    progress = {"type": "pull_progress", "package_id": P0, "source_version": 1}
    by_client = _send(app, PC0, **progress, bytes_done=1, bytes_total=2)
    assert by_client.accepted == 0
    assert "only distribution points" in by_client.rejected[0]["detail"]
    missing = _send(app, BR0, **progress, bytes_done=1)
    assert missing.accepted == 0 and "bytes_total" in missing.rejected[0]["detail"]
    # Another DP's row, or another version: dropped.
    _send(app, BR1, **progress, bytes_done=1, bytes_total=2)
    _send(app, BR0, type="pull_progress", package_id=P0, source_version=9, bytes_done=1,
          bytes_total=2)  # fmt: skip
    assert _row(app, P0, 2).pull_at is None
    with pytest.raises(ValueError):
        StatusIn.model_validate({**progress, "bytes_done": -1, "bytes_total": 2})


def _count_messages(app: FastAPI) -> int:
    with _ctx(app).db.reading() as s:
        return len(list(s.scalars(select(StatusMessage.id))))


def test_open_consoles_share_one_dashboard_read_while_only_deployments_move(
    app: FastAPI,
) -> None:
    """A wave moves deployment states several times a second; 20 open dashboards then
    cost one read a second, but anything else an administrator changes shows at once."""
    ctx = _ctx(app)
    first = shown(ctx)
    _installing(app, P0, 2)
    progress = {"type": "pull_progress", "package_id": P0, "source_version": 1}
    _send(app, BR0, **progress, bytes_done=1, bytes_total=2)  # a "deployments" change
    assert shown(ctx) is first
    with ctx.transaction() as s:
        ctx.changes.publish(s, concerns=())  # any other change
    moved = shown(ctx)
    assert moved is not first and [p.dp_name for p in moved.pulls] == ["br0"]


# -- a real branch DP pulling, seen live in a browser ----------------------------------------

PULLED = 1_200_000  # at 150 kB/s: about 8 s of pull, so several reports arrive mid-pull


@pytest.mark.slow
def test_a_branch_dps_pull_shows_live_on_its_package_page(
    page: Page, site_server: SiteProcess, tmp_path: Path
) -> None:
    world = branch_world(site_server, tmp_path, files={"big.bin": os.urandom(PULLED)})
    try:
        _follow_a_pull(page, site_server, world, tmp_path)
    finally:
        world.close()


def _follow_a_pull(page: Page, site: SiteProcess, world: BranchWorld, tmp_path: Path) -> None:
    name, dp_id = f"{world.tag}-br-dp", int(world.branch_dp["id"])
    world.start_branch(tmp_path / "branch", "--bandwidth-limit", "150000")
    console_ui.sign_in(page, site.admin_token)
    page.goto(f"/console/packages/{world.package_id}")
    expect(page.locator("#live")).to_have_attribute("data-following", "yes")
    page.evaluate("window.notReloaded = true")
    added = world.admin.post(
        f"/packages/{world.package_id}/distribution-points", json={"dp_id": dp_id}
    )
    assert added.status_code == 201, added.text

    total = world.manifest.total_size  # type: ignore[union-attr]
    shown = page.locator(f'tr[data-dp="{name}"] [data-pull-done]')

    def mid_pull() -> int | None:
        done = int(shown.get_attribute("data-pull-done") or 0) if shown.count() else 0
        return done if 0 < done < total else None

    done = wait_for("the page to show the pull part done", mid_pull, timeout=30)
    assert shown.get_attribute("data-pull-total") == str(total)
    seen = _api_row(world)
    assert seen["state"] in ("install_pending", "install_retrying"), seen
    console_ui.screenshot(page, site, "pull-progress")
    board = page.context.new_page()
    board.goto("/console/")
    pulls = board.get_by_role("region", name="Pulls in progress")
    expect(pulls.get_by_role("row", name=re.compile(name))).to_be_visible()
    console_ui.screenshot(board, site, "dashboard-pull")
    board.close()
    # Later reports move it on, on the same page.
    wait_for("a later report", lambda: (n := mid_pull()) is not None and n > done, timeout=15)

    row = page.locator(f'tr[data-dp="{name}"]')
    expect(row.get_by_text("installed", exact=True)).to_be_visible(timeout=30_000)
    expect(row.locator("[data-pull]")).to_have_count(0)
    assert page.evaluate("window.notReloaded") is True
    time.sleep(2.5)  # a progress report in flight would have arrived by now
    after = _api_row(world)
    assert after["state"] == "installed"
    assert [after[k] for k in ("pull_done_bytes", "pull_total_bytes", "pull_at")] == [None] * 3


def _api_row(world: BranchWorld) -> dict[str, Any]:
    status = ok(world.admin.get(f"/packages/{world.package_id}/status"))
    dp_id = int(world.branch_dp["id"])
    row: dict[str, Any] = next(r for r in status["distribution_points"] if r["dp_id"] == dp_id)
    return row
