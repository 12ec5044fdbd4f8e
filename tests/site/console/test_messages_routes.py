"""The status message viewer, the explain page and the audit log in process, on each
database: the API's new filters and the console's form read by the same query, a page
of the newest and the next by ID, the live part's newer rows, status messages waking the
console's stream and no policy waiter, and bad or hostile filter values answered with a
page saying what is wrong (never a 500)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from peerdp.config import SiteSettings
from peerdp.site.app import create_app
from peerdp.site.context import SiteContext
from peerdp.site.notify import EVERYTHING, MESSAGES
from peerdp.site.status import record
from peerdp.store.models import AuditEntry
from tests.helpers.asgi import asgi_request

API = {"Authorization": "Bearer secret"}
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
# (component, severity, type, minutes after T0)
LOG = [
    ("client", "info", "advertisement_received", 0),
    ("client", "error", "program_failed", 10),
    ("distribution", "error", "package_state", 20),
    ("mp", "info", "content_location", 30),
    ("client", "error", "program_failed", 40),
    ("site", "info", "dp_added_to_package", 50),
]


@pytest.fixture
def app(tmp_path: Path, db_url: str) -> FastAPI:
    settings = {"data_dir": tmp_path / "site", "admin_token": "secret", "db": db_url}
    made = create_app(SiteSettings.model_validate(settings))
    ctx: SiteContext = made.state.site
    with ctx.transaction() as s:
        for component, severity, type_, minutes in LOG:
            record(
                s,
                ctx.changes,
                component=component,
                source=f"{component}-1",
                type=type_,
                severity=severity,
                at=T0 + timedelta(minutes=minutes),
                client_name="PC-7" if component == "client" else None,
            )
    return made


def _cookie(app: FastAPI) -> dict[str, str]:
    form = {"credential": "secret"}
    signed = asgi_request(app, "POST", "/console/sign-in", {"Origin": "http://app"}, data=form)
    assert signed.status_code == 303, signed.text
    return {"Cookie": signed.headers["set-cookie"].split(";")[0]}


def _api(app: FastAPI, **params: Any) -> list[dict[str, Any]]:
    answer = asgi_request(app, "GET", "/api/v1/status-messages", API, params=params)
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()
    return rows


def _shown(page: httpx.Response) -> list[str]:
    """The types of the rows a page shows, in its order."""
    assert page.status_code == 200, page.text
    return _TYPE_CELL.findall(page.text)


# A row's fourth cell: its type.
_TYPE_CELL = re.compile(r'<tr data-id="\d+"[^>]*>\s*(?:<td>.*?</td>\s*){3}<td>([a-z_]+)</td>', re.S)


def test_the_api_filters_by_component_severity_time_and_id(app: FastAPI) -> None:
    errors = _api(app, component="client", severity="error", newest="true")
    assert [(m["type"], m["at"][11:16]) for m in errors] == [
        ("program_failed", "08:40"),
        ("program_failed", "08:10"),
    ]
    window = _api(app, since=T0.isoformat(), until=(T0 + timedelta(minutes=30)).isoformat())
    assert [m["type"] for m in window] == [
        "advertisement_received",
        "program_failed",
        "package_state",
    ], "since is at or after, until before"
    newest = _api(app, newest="true", limit=2)
    older = _api(app, newest="true", limit=2, before_id=newest[-1]["id"])
    assert [m["id"] for m in older] == [newest[-1]["id"] - 1, newest[-1]["id"] - 2]
    assert [m["severity"] for m in _api(app, severity="error")] == ["error"] * 3
    for bad in ({"severity": "fatal"}, {"component": "printer"}, {"before_id": 0}):
        answer = asgi_request(app, "GET", "/api/v1/status-messages", API, params=bad)
        assert answer.status_code == 422 and next(iter(bad)) in answer.text, bad


def test_the_viewer_shows_what_the_api_answers_for_the_same_filters(app: FastAPI) -> None:
    cookie = _cookie(app)
    for form, api in (
        ({}, {}),
        (
            {"component": "client", "severity": "error"},
            {"component": "client", "severity": "error"},
        ),
        ({"type": "program_failed"}, {"type": "program_failed"}),
        (
            {"client": "PC-7", "from": "2026-03-01T08:05", "to": "2026-03-01T08:40"},
            {
                "client_name": "PC-7",
                "since": "2026-03-01T08:05:00+00:00",
                "until": "2026-03-01T08:40:00+00:00",
            },
        ),
        ({"from": "2026-03-01T09:15+01:00"}, {"since": "2026-03-01T08:15:00+00:00"}),
    ):
        page = asgi_request(app, "GET", "/console/status-messages", cookie, params=form)
        expected = [m["type"] for m in _api(app, newest="true", **api)]
        assert _shown(page) == expected, form
    errors = asgi_request(app, "GET", "/console/status-messages?severity=error", cookie)
    assert errors.text.count('class="sev sev-error">error</span>') == 3
    assert errors.text.count('class="sev-row-error"') == 3


def test_a_page_of_the_newest_then_older_by_id_and_the_live_rows_newer_than_shown(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from peerdp.site.console import messages

    monkeypatch.setattr(messages, "PER_PAGE", 4)
    cookie = _cookie(app)
    first = asgi_request(app, "GET", "/console/status-messages", cookie)
    assert len(_shown(first)) == 4 and "Older</a>" in first.text
    ids = [m["id"] for m in _api(app, newest="true")]
    older = asgi_request(app, "GET", f"/console/status-messages?before_id={ids[3]}", cookie)
    assert _shown(older) == ["program_failed", "advertisement_received"]
    assert "Older</a>" not in older.text and "Newest</a>" in older.text

    follow = asgi_request(app, "GET", "/console/status-messages?severity=error&follow=1", cookie)
    assert f'data-after="{ids[1]}"' in follow.text and "data-events=" in follow.text
    assert 'data-live="/console/status-messages/live?severity=error"' in follow.text
    ctx: SiteContext = app.state.site
    with ctx.transaction() as s:
        for severity in ("info", "error"):
            record(
                s,
                ctx.changes,
                component="mp",
                source="x",
                type="on_demand_delayed",
                severity=severity,
            )
    live = asgi_request(
        app, "GET", f"/console/status-messages/live?severity=error&after_id={ids[1]}", cookie
    )
    assert live.status_code == 200
    assert live.text.count("<tr data-id=") == 1 and "on_demand_delayed" in live.text
    none = asgi_request(
        app, "GET", f"/console/status-messages/live?severity=error&after_id={ids[0] + 2}", cookie
    )
    assert none.status_code == 200 and "<tr" not in none.text


def test_a_status_message_wakes_the_console_stream_and_no_policy_waiter(app: FastAPI) -> None:
    ctx: SiteContext = app.state.site
    bus = ctx.changes
    before = (bus.generation, bus.generation_of(MESSAGES), bus.seen)
    with ctx.transaction() as s:
        for _ in range(3):
            record(s, bus, component="site", source="x", type="dp_settings")
    assert bus.generation == before[0], "policy waiters and caches are not woken"
    assert not bus.changed_since(before[0], {EVERYTHING, "package:PS100001"})
    assert bus.seen == before[2], "nor the other console pages"
    assert bus.generation_of(MESSAGES) == before[1] + 1, "one change per transaction"


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("type=no_such_type", "no status message type is called 'no_such_type'"),
        ("type=%3Cscript%3E", "is not a status message type"),
        ("severity=fatal", "severity: 'fatal' is not one of info, warning, error"),
        ("component=printer", "component: 'printer' is not one of"),
        ("from=yesterday", "from: 'yesterday' is not a date and time"),
        ("to=2026-13-45T99:00", "to: '2026-13-45T99:00' is not a date and time"),
        ("from=2026-03-02T00:00&to=2026-03-01T00:00", "the time range ends before it starts"),
        ("from=0001-01-01T00:00%2B14:00", "is not a date and time"),
        ("to=9999-12-31T23:59-12:00", "is not a date and time"),
        ("dp=nowhere-dp", "no distribution point is named 'nowhere-dp'"),
        ("advertisement=-1", "advertisement: '-1' is not an ID"),
        ("advertisement=99999999999", "is not an ID"),
        ("before_id=abc", "before_id: 'abc' is not an ID"),
        ("client=PC%00x", "client: not a value this filter can hold"),
        ("client=" + "x" * 300, "client: not a value this filter can hold"),
    ],
)
def test_bad_filter_values_get_a_page_saying_what_is_wrong(
    app: FastAPI, query: str, words: str
) -> None:
    cookie = _cookie(app)
    for path in ("/console/status-messages", "/console/status-messages/live"):
        answer = asgi_request(app, "GET", f"{path}?{query}", cookie)
        assert answer.status_code == 422, (path, answer.status_code, answer.text[-300:])
        assert "text/html" in answer.headers["content-type"]
        shown = answer.text.replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">")
        assert words in shown, (path, shown[-500:])
    extreme = "/console/status-messages?from=0001-01-01T00:00&to=9999-12-31T23:59:59"
    assert asgi_request(app, "GET", extreme, cookie).status_code == 200
    hostile = asgi_request(app, "GET", "/console/status-messages?client=%3Cscript%3E", cookie)
    assert hostile.status_code == 200 and "<script>" not in hostile.text.split("</head>")[1]


def test_explain_says_what_is_unknown_on_its_page(app: FastAPI) -> None:
    cookie = _cookie(app)
    empty = asgi_request(app, "GET", "/console/explain", cookie)
    assert empty.status_code == 200 and '<label for="e-client">' in empty.text
    for query, status, words in (
        ("client=PC-1&advertisement_id=4242", 404, "advertisement 4242 does not exist"),
        ("client=PC-1&advertisement_id=x", 422, "choose an advertisement"),
        ("client=&advertisement_id=1", 422, "give the client's machine name"),
        ("client=PC%00&advertisement_id=1", 422, "not a value this field can hold"),
        ("client=PC-1&advertisement_id=1&ip_addresses=999.1.1.1", 422, "ip_address"),
    ):
        answer = asgi_request(app, "GET", f"/console/explain?{query}", cookie)
        assert answer.status_code == status, (query, answer.text[-400:])
        assert 'role="alert"' in answer.text and words in answer.text.replace("&#39;", "'")
        assert '<label for="e-client">' in answer.text, "the form stays to try again"


def test_the_audit_log_page_filters_by_who_and_status_class(app: FastAPI) -> None:
    ctx: SiteContext = app.state.site
    with ctx.transaction() as s:
        for who, status in (("alice", 200), ("bob", 403), ("alice", 409)):
            s.add(
                AuditEntry(
                    who=who,
                    role="operator",
                    method="POST",
                    path=f"/api/v1/x/{who}",
                    resource="/x/{name}",
                    status=status,
                )
            )
    cookie = _cookie(app)
    page = asgi_request(app, "GET", "/console/audit", cookie)
    assert page.status_code == 200 and page.text.count("<tr data-id=") == 3
    refused = asgi_request(app, "GET", "/console/audit?who=alice&status_class=4xx", cookie)
    assert refused.text.count("<tr data-id=") == 1 and "/api/v1/x/alice" in refused.text
    assert ">409<" in refused.text
    api = asgi_request(app, "GET", "/api/v1/audit", API, params={"status_class": "4xx"})
    assert sorted(e["status"] for e in api.json()) == [403, 409]
    for query in ("status_class=9xx", "before_id=0", "who=a%00b"):
        bad = asgi_request(app, "GET", f"/console/audit?{query}", cookie)
        assert bad.status_code == 422 and "text/html" in bad.headers["content-type"], query
