"""A DP's /metrics: open by default, or only to the bearer of the metrics token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from peerdp.dp.metrics import add_metrics_route
from tests.helpers.asgi import asgi_get
from tests.helpers.processes import SiteProcess, start_site

from .standard_support import Site, start_dp


def metrics_app(token: str | None) -> FastAPI:
    app = FastAPI()
    add_metrics_route(app, token)
    return app


def test_metrics_are_open_by_default() -> None:
    answer = asgi_get(metrics_app(None), "/metrics")
    assert answer.status_code == 200
    assert "python_info" in answer.text or "process_" in answer.text


def test_metrics_behind_a_token_need_its_bearer() -> None:
    app = metrics_app("scrape-secret")
    refused = asgi_get(app, "/metrics")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert "metrics token" in refused.json()["detail"]
    wrong = asgi_get(app, "/metrics", {"Authorization": "Bearer other"})
    assert wrong.status_code == 401
    right = asgi_get(app, "/metrics", {"Authorization": "Bearer scrape-secret"})
    assert right.status_code == 200


@pytest.fixture(scope="module")
def site_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteProcess]:
    """A site on SQLite: who may read a DP's metrics does not depend on the database."""
    data_dir = tmp_path_factory.mktemp("site")
    server = start_site(data_dir, f"sqlite:///{data_dir / 'site.db'}")
    yield server
    server.stop()


@pytest.fixture
def guarded_dp(site_server: SiteProcess, tmp_path: Path) -> Iterator[str]:
    """A real standard DP started with --metrics-token; its URL."""
    _, token = Site.of(site_server).standard_dp()
    dp = start_dp(site_server, tmp_path / "dp", token, "--metrics-token", "scrape-secret")
    yield dp.url
    assert dp.stop() == 0


@pytest.mark.slow
def test_a_standard_dp_started_with_a_metrics_token_guards_metrics(guarded_dp: str) -> None:
    assert httpx.get(guarded_dp + "/metrics", timeout=10).status_code == 401
    auth = {"Authorization": "Bearer scrape-secret"}
    answer = httpx.get(guarded_dp + "/metrics", headers=auth, timeout=10)
    assert answer.status_code == 200
    assert "peerdp_dp_versions_installed" in answer.text
    assert httpx.get(guarded_dp + "/health", timeout=10).status_code == 200  # still open
