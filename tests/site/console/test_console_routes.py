"""Every console route but sign-in and the static files needs a session, and each action
stands for an API route of the role table (in-process app, on each database)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.routing import APIRoute

from peerdp.config import SiteSettings
from peerdp.site.admin.access import OPERATOR_ACTIONS
from peerdp.site.app import create_app
from peerdp.site.console import (
    PREFIX,
    actions,
    audit_log,
    events,
    explain,
    messages,
    pages,
    signin,
)
from peerdp.site.console.pages import ACTIONS
from peerdp.store.models import DeploymentStateRow, utcnow
from tests.helpers.asgi import asgi_request
from tests.site.mp_seed import Shape, seed

OPEN = {("GET", "/console/sign-in"), ("POST", "/console/sign-in")}


def _app(tmp_path: Path, db_url: str) -> FastAPI:
    settings = {"data_dir": tmp_path / "site", "admin_token": "secret", "db": db_url}
    return create_app(SiteSettings.model_validate(settings))


def test_every_console_route_needs_a_session(tmp_path: Path, db_url: str) -> None:
    app = _app(tmp_path, db_url)
    routes = [
        (method, PREFIX + route.path)
        # what console.install mounts
        for module in (signin, pages, actions, events, messages, explain, audit_log)
        for route in module.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    ]
    assert len(routes) >= 10
    for method, path in routes:
        if (method, path) in OPEN:
            continue
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        cookie = {"Cookie": "peerdp_console=not-a-session", "Origin": "http://app"}
        for headers in (None, cookie):
            answer = asgi_request(app, method, concrete, headers)
            if method == "GET" and not path.endswith(("/live", "/events")):
                assert answer.status_code == 303, f"{method} {path}: {answer.status_code}"
                assert answer.headers["location"] == "/console/sign-in"
            else:
                assert answer.status_code == 401, f"{method} {path}: {answer.status_code}"
                assert "Your session has ended" in answer.text


def test_the_sign_in_page_and_the_static_files_are_open(tmp_path: Path, db_url: str) -> None:
    app = _app(tmp_path, db_url)
    page = asgi_request(app, "GET", "/console/sign-in")
    assert page.status_code == 200 and '<label for="credential">' in page.text
    for name, kind in (("console.css", "text/css"), ("console.js", "javascript")):
        answer = asgi_request(app, "GET", f"/console/static/{name}")
        assert answer.status_code == 200 and kind in answer.headers["content-type"]


def test_each_action_stands_for_an_operator_route_of_the_role_table() -> None:
    assert set(ACTIONS.values()) <= set(OPERATOR_ACTIONS)


def test_unknown_things_and_bad_credentials_get_a_page_saying_so(
    tmp_path: Path, db_url: str
) -> None:
    app = _app(tmp_path, db_url)
    origin = {"Origin": "http://app"}
    empty = asgi_request(app, "POST", "/console/sign-in", origin, data={"credential": " "})
    assert empty.status_code == 400 and "Enter an admin credential" in empty.text
    wrong = asgi_request(app, "POST", "/console/sign-in", origin, data={"credential": "nope"})
    assert wrong.status_code == 401 and "wrong admin token" in wrong.text
    assert "set-cookie" not in wrong.headers
    signed = asgi_request(app, "POST", "/console/sign-in", origin, data={"credential": "secret"})
    assert signed.status_code == 303
    cookie = {"Cookie": f"peerdp_console={signed.cookies['peerdp_console']}"}
    for path, words in (
        ("/console/packages/PS999999", "package PS999999 does not exist"),
        ("/console/packages/PS999999/live", "package PS999999 does not exist"),
        ("/console/advertisements/4242", "advertisement 4242 does not exist"),
    ):
        answer = asgi_request(app, "GET", path, cookie)
        assert answer.status_code == 404 and words in answer.text, path
    bad = asgi_request(app, "GET", "/console/advertisements/1?state=sleeping", cookie)
    assert bad.status_code == 422 and "text/html" in bad.headers["content-type"]
    assert "state" in bad.text and "policy_received" in bad.text
    api = asgi_request(
        app, "GET", "/api/v1/advertisements/x/status", {"Authorization": "Bearer secret"}
    )
    assert api.status_code == 422 and "detail" in api.json(), "the API still answers JSON"
    board = asgi_request(app, "GET", "/console/", cookie)
    assert board.status_code == 200 and "No advertisements." in board.text


def test_an_advertisement_page_shows_the_boundaries_in_most_trouble_first(
    tmp_path: Path, db_url: str
) -> None:
    """Of 60 branches, the 50 with the most clients not yet succeeded are drawn, the one
    where every client failed first; the other 10 are summed up in a line."""
    app = _app(tmp_path, db_url)
    ctx = app.state.site
    shape = Shape(boundaries=60, branches=60, standard_dps=1, packages=1, clients=120)
    with ctx.transaction() as s:
        seed(s, shape, lambda i: f"pdm_console-{i}")
        s.bulk_insert_mappings(
            DeploymentStateRow,
            [
                {
                    "advertisement_id": 1,
                    "client_name": f"pc{i}",
                    "state": "failed" if i % 60 == 59 else "succeeded" if i % 60 else "running",
                    "source_version": 1,
                    "boundary_id": i % 60 + 1,
                    "at": utcnow(),
                }
                for i in range(shape.clients)
            ],
        )
    form = {"credential": "secret"}
    signed = asgi_request(app, "POST", "/console/sign-in", {"Origin": "http://app"}, data=form)
    assert signed.status_code == 303, signed.text
    cookie = {"Cookie": signed.headers["set-cookie"].split(";")[0]}
    page = asgi_request(app, "GET", "/console/advertisements/1", cookie)
    assert page.status_code == 200, page.text
    drawn = re.findall(r"<li><span>(b\d+)</span>", page.text)
    assert len(drawn) == 50
    assert drawn[:2] == ["b59", "b0"]  # every client failed, then every client running
    assert "10 more boundaries, with 20 client(s), 0 of them not yet succeeded" in page.text
