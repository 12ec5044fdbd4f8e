"""The site server: admin API, management point and background services in one app."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import select, text

import peerdp
from peerdp.config import SiteSettings, writable_data_dir
from peerdp.content.archive_limits import ArchiveLimits
from peerdp.security.bearer import bears_one_of
from peerdp.security.signing import SiteKey
from peerdp.site import console, errors
from peerdp.site.admin import (
    accounts,
    advertisements,
    boundaries,
    collections,
    distribution_points,
    explain,
    history,
    machines,
    packages,
    policy_polling,
    prestage,
    refresh,
    status_summaries,
)
from peerdp.site.admin.access import require_role
from peerdp.site.audit import AuditLog
from peerdp.site.auth import load_or_create_admin_token
from peerdp.site.context import SiteContext, site
from peerdp.site.errors import Unauthorized
from peerdp.site.limits import BodySizeLimit
from peerdp.site.metrics import PROCESSES, exposition
from peerdp.site.mp.management_point import ManagementPoint
from peerdp.site.mp.policy_endpoint import SiteApp
from peerdp.site.mp.router import router as mp_router
from peerdp.site.notify import ChangeBus
from peerdp.store.db import Database, upgrade
from peerdp.store.models import Site

# Background services add themselves here: each gets the context, runs until cancelled.
Service = Callable[[SiteContext], Any]


def open_site(settings: SiteSettings) -> SiteContext:
    """Open (creating or upgrading) the site's database, keys and admin token."""
    writable_data_dir(settings.data_dir)
    (settings.data_dir / "library").mkdir(exist_ok=True)
    db = Database(settings.database_url)
    upgrade(db.engine)
    with db.transaction() as s:
        if s.scalar(select(Site).where(Site.code == settings.site_code)) is None:
            s.add(Site(code=settings.site_code, name=f"Site {settings.site_code}"))
    token, token_path = load_or_create_admin_token(settings.data_dir, settings.admin_token)
    return SiteContext(
        settings=settings,
        db=db,
        key=SiteKey.load_or_create(settings.data_dir / "site-key.pem"),
        admin_token=token,
        admin_token_path=token_path,
        changes=ChangeBus(db.url, shared=not db.is_sqlite),
    )


def create_app(settings: SiteSettings, services: list[Service] | None = None) -> FastAPI:
    ctx = open_site(settings)
    ctx.mp = ManagementPoint.open(ctx)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx.changes.start(asyncio.get_running_loop())
        tasks = [asyncio.create_task(service(ctx)) for service in services or []]
        PROCESSES.inc()
        try:
            yield
        finally:
            PROCESSES.dec()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            ctx.mp.close()  # flush batched status messages
            ctx.changes.stop()
            ctx.db.dispose()

    app = SiteApp(
        title="peerdp site server",
        version=peerdp.__version__,
        description="Admin API (/api/v1) and management point (/mp/v1) of a peerdp site.",
        lifespan=lifespan,
        docs_url="/docs" if settings.api_docs else None,
        redoc_url="/redoc" if settings.api_docs else None,
        openapi_url="/openapi.json" if settings.api_docs else None,
    )
    app.state.site = ctx
    errors.install(app)
    admin = APIRouter(prefix="/api/v1", dependencies=[Depends(require_role)])
    for module in (
        boundaries,
        distribution_points,
        packages,
        collections,
        advertisements,
        machines,
        history,
        explain,
        refresh,
        prestage,
        policy_polling,
        status_summaries,
        accounts,
    ):
        admin.include_router(module.router)
    # Routes are matched in order, one by one: the management point's, asked by every
    # client, come first (behind the admin API's they cost each answer 56 us, 13 %).
    app.include_router(mp_router)
    app.include_router(admin)
    console.install(app)
    app.include_router(_ops_router(metrics_readers(settings, ctx.admin_token)))
    app.add_middleware(AuditLog, db=ctx.db)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        # The body as sent may be compressed, or a plain tar with its headers: the files'
        # bytes and members are counted as the archive is unpacked (site/packages.py).
        upload_bytes=ArchiveLimits(
            settings.max_upload_bytes, settings.max_upload_members
        ).max_stream_bytes,
    )
    return app


def metrics_readers(settings: SiteSettings, admin_token: str) -> tuple[str, ...] | None:
    """The tokens that may read /metrics, or None when anyone may."""
    if settings.metrics_admin_only:
        return (admin_token,)
    if settings.metrics_token:
        return (settings.metrics_token, admin_token)
    return None


def _ops_router(metrics_readers: tuple[str, ...] | None) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health")
    def health(ctx: SiteContext = Depends(site)) -> dict[str, Any]:
        with ctx.db.reading() as s:
            s.execute(text("SELECT 1"))
        return {
            "status": "ok",
            "site_code": ctx.site_code,
            "database": "sqlite" if ctx.db.is_sqlite else "postgresql",
            "version": peerdp.__version__,
            "process": os.getpid(),  # which of the site's processes (--workers) answered
        }

    @router.get("/metrics", response_class=PlainTextResponse)
    def metrics(request: Request) -> PlainTextResponse:
        if metrics_readers is not None and not bears_one_of(
            request.headers.get("authorization"), metrics_readers
        ):
            raise Unauthorized("/metrics needs 'Authorization: Bearer <metrics or admin token>'")
        return PlainTextResponse(exposition(), media_type=CONTENT_TYPE_LATEST)

    return router
