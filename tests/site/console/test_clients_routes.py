"""The console's clients, a client's page, enrolment tokens and reruns, in-process on each
database: paging and filters in SQL, unknown ids and hostile values answered with a page,
the actions' effects and refusals."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import delete, select, update

from peerdp.config import SiteSettings
from peerdp.site.app import create_app
from peerdp.site.auth import token_hash
from peerdp.store.models import (
    AdminAccount,
    AdvertisementRerun,
    Client,
    CollectionMember,
    DeploymentStateRow,
    EnrolmentToken,
    utcnow,
)
from tests.helpers.asgi import asgi_request
from tests.site.mp_seed import Shape, seed

ORIGIN = {"Origin": "http://app"}


class Console:
    """A signed-in console session on an in-process app."""

    def __init__(self, app: FastAPI, credential: str = "secret") -> None:
        self.app = app
        form = {"credential": credential}
        signed = asgi_request(app, "POST", "/console/sign-in", ORIGIN, data=form)
        assert signed.status_code == 303, signed.text
        self.cookie = {"Cookie": signed.headers["set-cookie"].split(";")[0]}
        board = self.get("/console/")
        found = re.search(r'name="csrf_token" value="([^"]+)"', board.text)
        assert found
        self.csrf = found[1]

    def get(self, path: str, **options: Any) -> httpx.Response:
        return asgi_request(self.app, "GET", path, self.cookie, **options)

    def post(self, path: str, form: dict[str, str] | None = None) -> httpx.Response:
        data = {"csrf_token": self.csrf, **(form or {})}
        return asgi_request(self.app, "POST", path, {**self.cookie, **ORIGIN}, data=data)


def _app(tmp_path: Path, db_url: str, clients: int = 120) -> FastAPI:
    settings = {"data_dir": tmp_path / "site", "admin_token": "secret", "db": db_url}
    app = create_app(SiteSettings.model_validate(settings))
    with app.state.site.transaction() as s:
        seed(s, Shape(boundaries=3, branches=3, standard_dps=1, packages=1, clients=clients), str)
        s.execute(update(Client).where(Client.name == "pc1").values(ip_addresses=["10.0.1.7"]))
        s.execute(update(Client).where(Client.name == "pc2").values(reenrol_allowed=True))
    return app


def _rows(page: httpx.Response) -> list[str]:
    return re.findall(r'<a href="/console/clients/\d+">([^<]+)</a>', page.text)


def test_the_client_list_is_paged_and_filtered_in_sql(tmp_path: Path, db_url: str) -> None:
    console = Console(_app(tmp_path, db_url))
    first = console.get("/console/clients")
    assert first.status_code == 200
    assert "120 client(s)" in first.text and "Page 1 of 2" in first.text
    assert _rows(first)[:3] == ["pc0", "pc1", "pc10"] and len(_rows(first)) == 100
    last = console.get("/console/clients", params={"number": 2})
    assert len(_rows(last)) == 20 and 'rel="prev"' in last.text and 'rel="next"' not in last.text
    # A name prefix, in any case: pc1, pc10-pc19, pc100-pc119.
    named = console.get("/console/clients", params={"name": "PC1"})
    assert "31 client(s)" in named.text and len(_rows(named)) == 31
    # The boundary the client is in now, by the address it reports.
    assert re.search(r">pc1</a></td><td>b1</td>", named.text)
    revoked = console.get("/console/clients", params={"state": "reenrol_allowed"})
    assert _rows(revoked) == ["pc2"] and "re-enrolment allowed" in revoked.text
    enrolled = console.get("/console/clients", params={"state": "enrolled", "name": "pc2"})
    assert _rows(enrolled) == [f"pc2{i}" for i in range(10)]
    past = console.get("/console/clients", params={"number": 99})
    assert past.status_code == 200 and "No client." in past.text


def test_hostile_filters_are_plain_text_or_refused(tmp_path: Path, db_url: str) -> None:
    console = Console(_app(tmp_path, db_url))
    for wildcard in ("pc1%", "%", "_c", "pc\\", "\ud7ff", "\U0010ffff", "pc\u00e9"):
        answer = console.get("/console/clients", params={"name": wildcard})
        assert answer.status_code == 200 and "0 client(s)" in answer.text, wildcard
    script = console.get("/console/clients", params={"name": "<script>x"})
    assert "<script>x" not in script.text and "&lt;script&gt;x" in script.text
    for params, words in (
        ({"name": "pc\x00"}, "name"),
        ({"name": "\u202epc"}, "U+202E"),
        ({"name": "p" * 201}, "name"),
        ({"state": "asleep"}, "state"),
        ({"number": "0"}, "number"),
        ({"number": "x"}, "number"),
    ):
        answer = console.get("/console/clients", params=params)
        assert answer.status_code == 422, params
        assert "text/html" in answer.headers["content-type"] and words in answer.text, params


def test_a_client_page_shows_its_history_and_unknown_ids_a_page(
    tmp_path: Path, db_url: str
) -> None:
    app = _app(tmp_path, db_url)
    with app.state.site.transaction() as s:
        s.add(
            DeploymentStateRow(
                advertisement_id=1,
                client_name="pc1",
                state="failed",
                source_version=1,
                reason="exit code 1603",
                exit_code=1603,
                source_dp_id=1,
                at=utcnow(),
            )
        )
    console = Console(app)
    page = console.get("/console/clients/2")
    assert page.status_code == 200 and "Client pc1" in page.text
    assert "10.0.1.7" in page.text and "<dd>b1</dd>" in page.text
    assert "adv0" in page.text and "1603" in page.text and "std0" in page.text
    assert "/console/explain?client=pc1&amp;advertisement_id=1" in page.text
    assert "/console/status-messages?client=pc1" in page.text
    assert 'action="/console/clients/2/rerun"' in page.text
    live = console.get("/console/clients/2/live")
    assert live.status_code == 200 and "adv0" in live.text and "<html" not in live.text
    for path, status, words in (
        ("/console/clients/4242", 404, "client 4242 does not exist"),
        ("/console/clients/4242/live", 404, "client 4242 does not exist"),
        ("/console/clients/4242/delete", 404, "client 4242 does not exist"),
        ("/console/clients/abc", 422, "client_id"),
        ("/console/clients/0", 422, "client_id"),
        ("/console/clients/99999999999", 422, "client_id"),
    ):
        answer = console.get(path)
        assert answer.status_code == status and words in answer.text, path


def _reruns(app: FastAPI) -> list[str | None]:
    with app.state.site.db.reading() as s:
        return list(s.scalars(select(AdvertisementRerun.client_name).order_by("id")))


def _fail(app: FastAPI, *names: str) -> None:
    with app.state.site.transaction() as s:
        for name in names:
            row = {"advertisement_id": 1, "client_name": name, "state": "failed"}
            s.add(DeploymentStateRow(**row, source_version=1, at=utcnow()))


def test_reruns_for_one_client_and_for_every_failed_one(tmp_path: Path, db_url: str) -> None:
    app = _app(tmp_path, db_url)
    console = Console(app)
    nothing = console.post("/console/advertisements/1/rerun-failed")
    assert nothing.status_code == 409 and "(adv0) has failed on no client" in nothing.text
    _fail(app, "pc3", "pc4", "pc5")
    with app.state.site.transaction() as s:  # pc5 left the collection since it failed
        s.execute(delete(CollectionMember).where(CollectionMember.machine_name == "pc5"))
    page = console.get("/console/advertisements/1")
    assert "Rerun for all failed clients (3)" in page.text
    assert 'aria-label="Rerun on pc3"' in page.text
    done = console.post("/console/advertisements/1/rerun-failed")
    assert done.status_code == 303
    note = console.get(done.headers["location"]).text
    assert "adv0 will run again on the 2 client(s) it failed on." in note
    assert _reruns(app) == ["pc3", "pc4"]

    one = console.post("/console/advertisements/1/rerun", {"client_name": "pc7"})
    assert one.status_code == 303 and _reruns(app)[-1] == "pc7"
    from_client = console.post("/console/clients/9/rerun", {"advertisement_id": "1"})
    assert from_client.status_code == 303
    assert from_client.headers["location"].startswith("/console/clients/9?note=adv0%20will")
    assert _reruns(app)[-1] == "pc8"
    for path, form, status, words in (
        ("/console/advertisements/1/rerun", {"client_name": "nobody"}, 422, "not a member"),
        ("/console/advertisements/1/rerun", {"client_name": "\u202epc1"}, 422, "U+202E"),
        ("/console/advertisements/1/rerun", {}, 422, "choose a client"),
        ("/console/advertisements/4242/rerun", {"client_name": "pc1"}, 404, "4242"),
        ("/console/advertisements/4242/rerun-failed", {}, 404, "4242"),
        ("/console/clients/9/rerun", {"advertisement_id": "x"}, 422, "choose an advert"),
        ("/console/clients/9/rerun", {"advertisement_id": "99999999999"}, 422, "choose"),
        ("/console/clients/9/rerun", {"advertisement_id": "4242"}, 404, "4242"),
        ("/console/clients/4242/rerun", {"advertisement_id": "1"}, 404, "client 4242"),
    ):
        answer = console.post(path, form)
        assert answer.status_code == status and words in answer.text, (path, form)
    assert len(_reruns(app)) == 4


def test_reenrolment_and_deletion(tmp_path: Path, db_url: str) -> None:
    app = _app(tmp_path, db_url)
    console = Console(app)
    allowed = console.post("/console/clients/4/reenrol")
    assert allowed.status_code == 303 and "Re-enrolment%20allowed" in allowed.headers["location"]
    confirm = console.get("/console/clients/4/delete")
    assert (
        "Delete client pc3?" in confirm.text
        and 'action="/console/clients/4/delete"' in confirm.text
    )
    gone = console.post("/console/clients/4/delete")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/console/clients?")
    assert "Deleted client pc3" in console.get(gone.headers["location"]).text
    with app.state.site.db.reading() as s:
        assert s.scalar(select(Client).where(Client.name == "pc3")) is None
    again = console.post("/console/clients/4/delete")
    assert again.status_code == 404 and "client 4 does not exist" in again.text
    assert console.post("/console/clients/4/reenrol").status_code == 404


def _token_rows(app: FastAPI) -> list[EnrolmentToken]:
    with app.state.site.db.reading() as s:
        return list(s.scalars(select(EnrolmentToken).order_by(EnrolmentToken.id)))


def test_a_token_secret_is_shown_once_and_bad_forms_are_refused(
    tmp_path: Path, db_url: str
) -> None:
    app = _app(tmp_path, db_url, clients=2)
    console = Console(app)
    form = {"role": "client", "max_uses": "5", "expires_in_days": "2", "dp_id": ""}
    made = console.post("/console/enrolment-tokens", form)
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    secret = re.search(r"<code id=\"secret\" data-secret>(pde_[^<]+)</code>", made.text)
    assert secret
    [row] = _token_rows(app)
    assert row.token_hash == token_hash(secret[1]) and (row.role, row.max_uses) == ("client", 5)
    assert row.expires_at is not None
    listed = console.get("/console/enrolment-tokens")
    assert secret[1] not in listed.text and "0 of 5" in listed.text and "usable" in listed.text
    for bad, words in (
        ({"role": "printer"}, "role"),
        ({"role": "client", "max_uses": "0"}, "max_uses"),
        ({"role": "client", "max_uses": "lots"}, "max_uses"),
        ({"role": "client", "expires_in_days": "0"}, "expires_in_days"),
        ({"role": "client", "expires_in_days": "-1"}, "expires_in_days"),
        ({"role": "client", "dp_id": "2"}, "a client token takes no dp_id"),
        ({"role": "branch_dp"}, "needs dp_id"),
        ({"role": "branch_dp", "dp_id": "1"}, "is a standard DP"),
        ({"role": "branch_dp", "dp_id": "4242"}, "4242 does not exist"),
    ):
        answer = console.post("/console/enrolment-tokens", bad)
        assert answer.status_code in (404, 422) and words in answer.text, bad
        assert "pde_" not in answer.text
    assert len(_token_rows(app)) == 1
    revoked = console.post(f"/console/enrolment-tokens/{row.id}/revoke")
    assert revoked.status_code == 303 and _token_rows(app) == []
    unknown = console.post(f"/console/enrolment-tokens/{row.id}/revoke")
    assert unknown.status_code == 404 and f"enrolment token {row.id} does not exist" in unknown.text
    assert console.post("/console/enrolment-tokens/abc/revoke").status_code == 422


def test_a_read_only_account_sees_no_form_and_is_refused(tmp_path: Path, db_url: str) -> None:
    app = _app(tmp_path, db_url, clients=3)
    _fail(app, "pc1")
    with app.state.site.transaction() as s:
        s.add(AdminAccount(name="viewer", role="read_only", token_hash=token_hash("viewer-1")))
    console = Console(app, "viewer-1")
    for path in (
        "/console/clients",
        "/console/clients/2",
        "/console/clients/2/delete",
        "/console/enrolment-tokens",
        "/console/advertisements/1",
    ):
        answer = console.get(path)
        assert answer.status_code == 200, path
        forms = re.findall(r'<form[^>]* method="post" action="([^"]+)"', answer.text)
        assert forms == ["/console/sign-out"], (path, forms)
    for path, form in (
        ("/console/clients/2/rerun", {"advertisement_id": "1"}),
        ("/console/clients/2/reenrol", {}),
        ("/console/clients/2/delete", {}),
        ("/console/advertisements/1/rerun", {"client_name": "pc1"}),
        ("/console/advertisements/1/rerun-failed", {}),
        ("/console/enrolment-tokens", {"role": "client"}),
        ("/console/enrolment-tokens/1/revoke", {}),
    ):
        answer = console.post(path, form)
        assert answer.status_code == 403 and "needs the operator role" in answer.text, path
    assert _reruns(app) == [] and _token_rows(app) == []


def test_a_filter_left_at_any_filters_nothing(tmp_path: Path, db_url: str) -> None:
    console = Console(_app(tmp_path, db_url, clients=3))
    every = console.get("/console/clients", params={"state": "", "name": ""})
    assert every.status_code == 200 and "3 client(s)" in every.text
    any_state = console.get("/console/advertisements/1", params={"state": ""})
    assert any_state.status_code == 200, any_state.text
