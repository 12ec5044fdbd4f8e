"""The admin client on its own: answers, and the one error for every kind of failure.

The calls go to a real site server (`site_server`, SQLite and PostgreSQL); the pieces
that need no server (URLs, error wording) are checked directly.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from peerdp.admin_client import TOKEN_ENV, AdminClient, AdminError, describe_error, site_url
from tests.helpers.api import unique
from tests.helpers.processes import SiteProcess


@pytest.fixture
def client(site_server: SiteProcess) -> Iterator[AdminClient]:
    with AdminClient(site_server.url, site_server.admin_token) as client:
        yield client


def test_site_url_is_normalised() -> None:
    assert site_url("http://site:8080/") == "http://site:8080"
    assert site_url("https://site/api/v1/") == "https://site"
    with pytest.raises(AdminError) as refused:
        site_url("site:8080")
    assert refused.value.status is None
    assert "must start with http:// or https://" in refused.value.message


def _response(status: int, **kwargs: object) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("GET", "http://site/"), **kwargs)  # type: ignore[arg-type]


def test_error_messages() -> None:
    assert describe_error(_response(404, json={"detail": "boundary 9 does not exist"})) == (
        "boundary 9 does not exist"
    )
    unauthorised = describe_error(_response(401, json={"detail": "wrong admin token"}))
    assert "admin token" in unauthorised and "PEERDP_ADMIN_TOKEN" in unauthorised
    assert "HTTP 502" in describe_error(_response(502, text="Bad Gateway"))
    listed = _response(422, json={"detail": [{"msg": "field required"}, {"msg": "too long"}]})
    assert describe_error(listed) == "field required; too long"


def test_a_refused_connection_has_no_status() -> None:
    with socket.socket() as closed:  # a port nothing listens on once this socket is closed
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    with AdminClient(url, "any-token") as client, pytest.raises(AdminError) as failed:
        client.get("/boundaries")
    assert failed.value.status is None
    assert failed.value.message.startswith(f"cannot connect to the site server at {url} (")
    assert "is it running?" in failed.value.message


@pytest.mark.slow
def test_calls_answer_with_decoded_json(client: AdminClient) -> None:
    body = {"name": unique("b"), "type": "ip_subnet", "value": "10.9.8.0/24"}
    made = client.post("/boundaries", body)
    assert made["name"] == body["name"] and made["connection"] == "fast"
    path = f"/boundaries/{made['id']}"
    assert client.get(path) == made
    changed = client.patch(path, {"name": made["name"], "connection": "slow"})
    assert changed["connection"] == "slow"
    listed = client.get("/boundaries", {"type": "ip_subnet", "limit": None})
    assert made["id"] in [row["id"] for row in listed]
    assert client.delete(path) is None  # 204: no body


@pytest.mark.slow
def test_an_error_answer_carries_the_sites_detail_and_status(client: AdminClient) -> None:
    with pytest.raises(AdminError) as failed:
        client.get("/boundaries/999999")
    assert failed.value.status == 404
    assert "does not exist" in failed.value.message


@pytest.mark.slow
def test_a_wrong_token_is_refused_with_a_hint(site_server: SiteProcess) -> None:
    wrong = AdminClient(site_server.url, "not-the-token")
    with wrong, pytest.raises(AdminError) as failed:
        wrong.get("/boundaries")
    assert failed.value.status == 401
    assert "refused the admin token" in failed.value.message
    assert TOKEN_ENV in failed.value.message
