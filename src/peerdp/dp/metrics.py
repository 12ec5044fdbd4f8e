"""`GET /metrics` of a DP: the Prometheus exposition, open or behind a bearer token."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from peerdp.security.bearer import bears_one_of


def add_metrics_route(app: FastAPI, token: str | None) -> None:
    """Serve `/metrics` on `app`: to anyone when `token` is None, else only to its bearer."""

    def metrics(request: Request) -> PlainTextResponse:
        if token is not None and not bears_one_of(request.headers.get("authorization"), [token]):
            raise HTTPException(
                401,
                "/metrics needs 'Authorization: Bearer <metrics token>'",
                {"WWW-Authenticate": "Bearer"},
            )
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", metrics, methods=["GET"], response_class=PlainTextResponse)
