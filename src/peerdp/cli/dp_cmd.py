"""`peerdp dp serve`: a standard distribution point.

`peerdp dp` also holds the admin commands for distribution points (cli/commands/dp.py);
`register` adds `serve` to that group.
"""

from __future__ import annotations

from pathlib import Path

import typer

from peerdp.cli.serving import LOG_FORMAT, VALIDATE_INTERVAL_HELP


def register() -> None:
    """Add `serve` to the `peerdp dp` command group."""
    from peerdp.cli.commands.dp import app

    app.command(name="serve")(serve)


def serve(
    site: str | None = typer.Option(
        None,
        "--site",
        envvar="PEERDP_SITE_URL",
        help="The site's URL: needed to register, then saved with the identity; given later, "
        "it replaces the saved one (the site server moved).",
    ),
    token: str | None = typer.Option(
        None,
        "--token",
        envvar="PEERDP_ENROLMENT_TOKEN",
        help="Enrolment token (role standard_dp); needed only the first time.",
    ),
    data_dir: Path = typer.Option(
        Path("peerdp-dp"), "--data-dir", help="Where the DP keeps its identity and content."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int | None = typer.Option(
        None, "--port", help="Port to listen on (default: the last run's if free, else any)."
    ),
    name: str | None = typer.Option(None, "--name", help="Name to register (default: hostname)."),
    ip_address: list[str] = typer.Option(
        [], "--ip-address", help="An address of this DP to report (repeatable)."
    ),
    ad_site: str | None = typer.Option(None, "--ad-site", help="AD site of this DP."),
    url: str | None = typer.Option(
        None, "--url", help="Public URL clients use (default: http://HOST:PORT)."
    ),
    max_transfers: int | None = typer.Option(
        None,
        "--max-transfers",
        min=1,
        help="Transfers served at once. Overrides the site's setting for this DP "
        "(default: the site's, else no limit).",
    ),
    validate_interval: str = typer.Option(
        "24h", "--validate-interval", help=VALIDATE_INTERVAL_HELP
    ),
    ca_file: Path | None = typer.Option(
        None,
        "--ca-file",
        envvar="PEERDP_CA_FILE",
        help="CA certificates (PEM) the site's HTTPS certificate is checked with; pinned at "
        "registration (default: the pinned CA, else the system's).",
    ),
    tls_cert: Path | None = typer.Option(
        None,
        "--tls-cert",
        envvar="PEERDP_TLS_CERT",
        help="Serve HTTPS with this certificate chain (PEM; with --tls-key).",
    ),
    tls_key: Path | None = typer.Option(
        None, "--tls-key", envvar="PEERDP_TLS_KEY", help="The private key of --tls-cert (PEM)."
    ),
    metrics_token: str | None = typer.Option(
        None,
        "--metrics-token",
        envvar="PEERDP_METRICS_TOKEN",
        help="Serve /metrics only to a bearer of this token (default: to anyone).",
    ),
    log_format: str | None = LOG_FORMAT,
) -> None:
    """Register (first time), check the store, report it, and serve until SIGTERM or Ctrl-C.

    It logs what it receives, publishes and removes on stderr; /metrics counts the bytes
    and requests it serves to clients.
    """
    from peerdp.cli.serving import (
        announce,
        options_checked,
        server_certificate,
        start_logging,
        validate_interval_s,
    )
    from peerdp.dp.standard import DPOptions
    from peerdp.dp.standard import serve as run

    start_logging(log_format, "standard_dp")
    with options_checked():
        certificate = server_certificate(tls_cert, tls_key)
    options = DPOptions(
        site_url=site.rstrip("/") if site else None,
        token=token,
        data_dir=data_dir,
        host=host,
        port=port,
        name=name,
        ip_addresses=tuple(ip_address),
        ad_site=ad_site,
        public_url=url.rstrip("/") if url else None,
        max_transfers=max_transfers,
        validate_interval_s=validate_interval_s(validate_interval),
        certificate=certificate,
        ca_file=ca_file,
        metrics_token=metrics_token,
    )
    with options_checked():
        run(options, announce)
