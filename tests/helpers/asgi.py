"""Asking an ASGI app in this process, without a server (its lifespan is not run)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx
from starlette.types import ASGIApp


def asgi_request(
    app: ASGIApp,
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    **options: Any,
) -> httpx.Response:
    """`method path` answered by `app`; `options` as httpx's (`json`, `params`)."""

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.request(method, path, headers=headers, **options)

    return asyncio.run(ask())


def asgi_get(app: ASGIApp, path: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
    """`GET path` answered by `app`."""
    return asgi_request(app, "GET", path, headers)
