"""Running the site server under uvicorn, on a socket we bind so port 0 works."""

from __future__ import annotations

import os
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from peerdp.config import ConfigError, SiteSettings
from peerdp.logs import setup
from peerdp.net import bind as bind  # re-exported: agents import it from here
from peerdp.net import exit_zero_after_sigterm
from peerdp.net import url_of as url_of
from peerdp.security.tls import ServerCertificate, TLSSetupError, client_context
from peerdp.site.app import create_app, open_site
from peerdp.site.notify import release_waiters
from peerdp.store.db import is_sqlite


def app_from_env() -> FastAPI:
    """uvicorn factory: each worker process builds its app from PEERDP_* settings."""
    from peerdp.site.services import SERVICES

    setup(role="site")  # a worker process: the format comes from PEERDP_LOG_FORMAT
    return create_app(SiteSettings(), services=SERVICES)


def run(settings: SiteSettings, announce: Callable[[str], None], workers: int = 1) -> None:
    """Serve until SIGTERM; `announce` gets the lines that say where (URL, admin token).

    Raises ConfigError for settings that cannot work.
    """
    if workers > 1 and is_sqlite(settings.database_url):
        raise ConfigError("several workers need PostgreSQL (--db postgresql://...)")
    try:
        certificate = ServerCertificate.of(settings.tls_cert, settings.tls_key)
        if settings.ca_file is not None:
            client_context(settings.ca_file)  # the DPs' CA: refused now, not at each push
    except TLSSetupError as exc:
        raise ConfigError(str(exc)) from exc
    # Open once here: creates the schema, key and admin token before workers start.
    ctx = open_site(settings)
    ctx.db.dispose()
    sock = bind(settings.host, settings.port)
    url = url_of(sock, settings.host, tls=certificate is not None)
    for name, value in {
        "PEERDP_DATA_DIR": str(settings.data_dir.resolve()),
        "PEERDP_DB": settings.db or "",
        "PEERDP_SITE_CODE": settings.site_code,
        "PEERDP_PUBLIC_URL": url,
        "PEERDP_CA_FILE": str(settings.ca_file.resolve()) if settings.ca_file else "",
        "PEERDP_METRICS_TOKEN": settings.metrics_token or "",
        "PEERDP_METRICS_ADMIN_ONLY": "true" if settings.metrics_admin_only else "",
        "PEERDP_API_DOCS": "" if settings.api_docs else "false",
    }.items():
        if value:
            os.environ[name] = value
    announce(f"peerdp site {settings.site_code} listening on {url}")
    if ctx.admin_token_path is not None:
        announce(f"admin token: {ctx.admin_token_path.resolve()}")
    else:
        announce("admin token: from PEERDP_ADMIN_TOKEN")
    exit_zero_after_sigterm()
    options: dict[str, Any] = {
        "log_level": "warning",
        "log_config": None,  # uvicorn's records go through peerdp.logs like every other
        "access_log": False,
        "timeout_graceful_shutdown": 5,
    }
    if certificate is not None:
        options.update(certificate.uvicorn_options())
    if workers == 1:
        # Our own TCP socket, as is: uvicorn's `fd=` would wrap it as a UNIX socket, so
        # TCP_NODELAY is never set and every answer waits ~40 ms for a delayed ACK.
        config = uvicorn.Config("peerdp.site.server:app_from_env", factory=True, **options)
        SiteServer(config).run(sockets=[sock])
        return
    # Worker processes bind the port themselves (it is known now, even if 0 was asked).
    port = sock.getsockname()[1]
    sock.close()
    uvicorn.run(
        "peerdp.site.server:app_from_env",
        factory=True,
        host=settings.host,
        port=port,
        workers=workers,
        **options,
    )


class SiteServer(uvicorn.Server):
    """uvicorn's server, which also answers open long-polls when told to stop, so a
    shutdown does not wait out their `wait` (or the grace period) and cancel them."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        release_waiters()
        super().handle_exit(sig, frame)
