"""Asking an ASGI app in this process, without a server (its lifespan is not run)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx
from starlette.types import ASGIApp


def asgi_get(app: ASGIApp, path: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
    """`GET path` answered by `app`."""

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(get())
