"""Running the site server under uvicorn, on a socket we bind so port 0 works (its
processes, and how they start and stop, are in `site/workers.py`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from resource import RLIM_INFINITY
from typing import Any

from fastapi import FastAPI

from peerdp.config import ConfigError, SiteSettings
from peerdp.logs import get_logger, setup
from peerdp.net import bind as bind  # re-exported: agents import it from here
from peerdp.net import url_of as url_of
from peerdp.security.tls import ServerCertificate, TLSSetupError, client_context
from peerdp.site.app import create_app, open_site
from peerdp.site.mp.held_polls import configured_limit, raise_open_files_limit
from peerdp.site.workers import serve
from peerdp.store.db import is_sqlite


def app_from_env() -> FastAPI:
    """uvicorn factory: each worker process builds its app from PEERDP_* settings."""
    from peerdp.site.services import SERVICES

    setup(role="site")  # a worker process: the format comes from PEERDP_LOG_FORMAT
    return create_app(SiteSettings(), services=SERVICES)


log = get_logger("peerdp.site")


def run(settings: SiteSettings, announce: Callable[[str], None], workers: int = 1) -> None:
    """Serve until SIGTERM; `announce` gets the lines that say where (URL, admin token),
    once every worker accepts connections.

    Raises ConfigError for settings that cannot work.
    """
    if workers < 1:
        raise ConfigError(f"--workers must be 1 or more, not {workers}")
    if workers > 1 and is_sqlite(settings.database_url):
        raise ConfigError("several workers need PostgreSQL (--db postgresql://...)")
    try:
        certificate = ServerCertificate.of(settings.tls_cert, settings.tls_key)
        if settings.ca_file is not None:
            client_context(settings.ca_file)  # the DPs' CA: refused now, not at each push
    except TLSSetupError as exc:
        raise ConfigError(str(exc)) from exc
    _raise_open_files_limit(settings)
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
    options: dict[str, Any] = {
        "app": "peerdp.site.server:app_from_env",  # each process builds its own app
        "factory": True,
        "log_level": "warning",
        "log_config": None,  # uvicorn's records go through peerdp.logs like every other
        "access_log": False,
    }
    if certificate is not None:
        options.update(certificate.uvicorn_options())

    def ready() -> None:  # every worker accepts connections now
        announce(f"peerdp site {settings.site_code} listening on {url}")
        if ctx.admin_token_path is not None:
            announce(f"admin token: {ctx.admin_token_path.resolve()}")
        else:
            announce("admin token: from PEERDP_ADMIN_TOKEN")

    serve(options, sock, workers, ready)


def _raise_open_files_limit(settings: SiteSettings) -> None:
    """Every held policy long-poll is an open file: take all the system allows (the
    workers inherit it), and say how many long-polls each process will hold."""
    before, now = raise_open_files_limit()
    raised = {"raised_from": before} if before != now else {}
    log.info(
        "open files limit",
        open_files="unlimited" if now == RLIM_INFINITY else now,
        **raised,
        policy_long_polls_per_process=configured_limit(settings) or "unlimited",
    )
