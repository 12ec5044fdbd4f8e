"""`peerdp site serve`: the site server (admin API, management point, services);
`peerdp site policy-polling`: how its clients fetch policy."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from peerdp.cli.policy_polling_cmd import policy_polling
from peerdp.cli.serving import LOG_FORMAT, announce, options_checked, start_logging
from peerdp.config import SiteSettings
from peerdp.logs import LOG_FORMAT_ENV

app = typer.Typer(help="The site server.", no_args_is_help=True)
app.command("policy-polling")(policy_polling)


@app.command()
def serve(
    data_dir: Path = typer.Option(
        Path("peerdp-site"),
        "--data-dir",
        envvar="PEERDP_DATA_DIR",
        help="Where the site keeps "
        "its database (SQLite), content library, signing key and admin token.",
    ),
    db: str | None = typer.Option(
        None,
        "--db",
        envvar="PEERDP_DB",
        help="Database URL, e.g. postgresql://user@host/db "
        "(default: SQLite in the data directory).",
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", help="Port to listen on (0 picks a free one)."),
    site_code: str = typer.Option("PS1", "--site-code", help="Three-character site code."),
    workers: int = typer.Option(1, "--workers", help="Worker processes (PostgreSQL only)."),
    tls_cert: Path | None = typer.Option(
        None,
        "--tls-cert",
        envvar="PEERDP_TLS_CERT",
        help="Serve HTTPS with this certificate chain (PEM; with --tls-key).",
    ),
    tls_key: Path | None = typer.Option(
        None, "--tls-key", envvar="PEERDP_TLS_KEY", help="The private key of --tls-cert (PEM)."
    ),
    ca_file: Path | None = typer.Option(
        None,
        "--ca-file",
        envvar="PEERDP_CA_FILE",
        help="CA certificates (PEM) to trust for the standard DPs' HTTPS (default: the system's).",
    ),
    metrics_token: str | None = typer.Option(
        None,
        "--metrics-token",
        envvar="PEERDP_METRICS_TOKEN",
        help="Serve /metrics only to a bearer of this token (or the admin token).",
    ),
    metrics_admin_only: bool = typer.Option(
        False,
        "--metrics-admin-only",
        envvar="PEERDP_METRICS_ADMIN_ONLY",
        help="Serve /metrics only to a bearer of the admin token.",
    ),
    api_docs: bool = typer.Option(
        True,
        "--api-docs/--no-api-docs",
        envvar="PEERDP_API_DOCS",
        help="Serve the API documentation (/docs, /redoc, /openapi.json).",
    ),
    log_format: str | None = LOG_FORMAT,
) -> None:
    """Run the site server until SIGTERM or Ctrl-C.

    It logs what its distribution manager and management point decide (pushes to DPs,
    DP state changes, on-demand provisioning, status messages) on stderr.
    """
    from peerdp.cli.connection import fail
    from peerdp.site.server import run
    from peerdp.site.workers import WorkerFailed

    # Worker processes (--workers) set up their log from the variable.
    os.environ[LOG_FORMAT_ENV] = start_logging(log_format, "site")
    settings = SiteSettings(
        data_dir=data_dir,
        db=db,
        host=host,
        port=port,
        site_code=site_code,
        tls_cert=tls_cert,
        tls_key=tls_key,
        ca_file=ca_file,
        metrics_token=metrics_token,
        metrics_admin_only=metrics_admin_only,
        api_docs=api_docs,
    )
    with options_checked():
        try:
            run(settings, announce, workers=workers)
        except WorkerFailed as exc:
            fail(str(exc))
