"""What the site shows without the admin token: /metrics and the API documentation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from peerdp.config import SiteSettings
from peerdp.site.app import create_app
from tests.helpers.asgi import asgi_get
from tests.helpers.processes import SiteProcess, start_site

ADMIN = "admin-secret"


class Site:
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return asgi_get(self.app, path, headers)


def site_app(tmp_path: Path, **settings: object) -> Site:
    """The site's app in this process (no services, no lifespan): enough for its routes."""
    config = SiteSettings.model_validate(
        {"data_dir": tmp_path / "site", "admin_token": ADMIN, **settings}
    )
    return Site(create_app(config))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_by_default_metrics_and_docs_are_open(tmp_path: Path) -> None:
    client = site_app(tmp_path)
    assert client.get("/metrics").status_code == 200
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_a_metrics_token_guards_metrics(tmp_path: Path) -> None:
    client = site_app(tmp_path, metrics_token="scrape-secret")
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert "metrics or admin token" in refused.json()["detail"]
    assert client.get("/metrics", headers=bearer("wrong")).status_code == 401
    assert client.get("/metrics", headers=bearer("scrape-secret")).status_code == 200
    assert client.get("/metrics", headers=bearer(ADMIN)).status_code == 200
    assert client.get("/health").status_code == 200  # a load balancer's check stays open


def test_metrics_for_the_admin_only(tmp_path: Path) -> None:
    client = site_app(tmp_path, metrics_admin_only=True, metrics_token="scrape-secret")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=bearer("scrape-secret")).status_code == 401
    assert client.get("/metrics", headers=bearer(ADMIN)).status_code == 200


def test_the_api_documentation_can_be_turned_off(tmp_path: Path) -> None:
    client = site_app(tmp_path, api_docs=False)
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 404, path
    assert client.get("/health").status_code == 200


@pytest.fixture(scope="module")
def guarded_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteProcess]:
    """A real site server told by its environment to guard /metrics and hide its docs."""
    data_dir = tmp_path_factory.mktemp("site")
    env = {"PEERDP_METRICS_TOKEN": "scrape-secret", "PEERDP_API_DOCS": "false"}
    server = start_site(data_dir, f"sqlite:///{data_dir / 'site.db'}", extra_env=env)
    yield server
    server.stop()


@pytest.mark.slow
def test_a_site_server_follows_its_exposure_settings(guarded_site: SiteProcess) -> None:
    url = guarded_site.url
    assert httpx.get(url + "/metrics", timeout=10).status_code == 401
    scrape = httpx.get(url + "/metrics", headers=bearer("scrape-secret"), timeout=10)
    assert scrape.status_code == 200
    assert "python_info" in scrape.text
    assert httpx.get(url + "/openapi.json", timeout=10).status_code == 404
