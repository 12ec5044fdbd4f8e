"""`peerdp branch serve` and `peerdp client run`: the agents of managed machines."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer

from peerdp.cli.connection import fail
from peerdp.cli.serving import LOG_FORMAT, VALIDATE_INTERVAL_HELP, start_logging
from peerdp.logs import get_logger
from peerdp.machine.mp_client import Identity, MachineFacts, MPClient, MPError, enrol, load_identity

if TYPE_CHECKING:
    from peerdp.agents.client import ClientAgent

branch_app = typer.Typer(help="A branch distribution point.", no_args_is_help=True)
client_app = typer.Typer(help="The client agent of a managed machine.", no_args_is_help=True)

_log = get_logger("peerdp.client")

EXIT_FAILED = 1  # some due advertisement did not run successfully
EXIT_NO_POLICY = 2  # no verified policy (site unreachable, registration or signature refused)

SITE = typer.Option(
    None,
    "--site",
    envvar="PEERDP_SITE_URL",
    help="Base URL of the site server: needed to register, then saved with the identity; "
    "given later, it replaces the saved one (the site server moved).",
)
TOKEN = typer.Option(
    None,
    "--token",
    envvar="PEERDP_ENROLMENT_TOKEN",
    help="Enrolment token; needed only for the first run (the identity is kept).",
)
NAME = typer.Option(None, "--name", help="Machine name (default: the host name).")
ADDRESSES = typer.Option(
    None, "--ip-address", help="An IP address of this machine (repeat; default: detected)."
)
AD_SITE = typer.Option(None, "--ad-site", help="The directory (AD) site of this machine.")
CA_FILE = typer.Option(
    None,
    "--ca-file",
    envvar="PEERDP_CA_FILE",
    help="CA certificates (PEM) the site's and DPs' HTTPS certificates are checked with; "
    "pinned at registration (default: the pinned CA, else the system's).",
)
TLS_CERT = typer.Option(
    None,
    "--tls-cert",
    envvar="PEERDP_TLS_CERT",
    help="Serve HTTPS with this certificate chain (PEM; with --tls-key).",
)
TLS_KEY = typer.Option(
    None, "--tls-key", envvar="PEERDP_TLS_KEY", help="The private key of --tls-cert (PEM)."
)


def register(app: typer.Typer) -> None:
    app.add_typer(branch_app, name="branch")
    app.add_typer(client_app, name="client")


def _site_url(url: str | None) -> str | None:
    return url.rstrip("/") if url else None


@branch_app.command("serve")
def branch_serve(
    site: str | None = SITE,
    token: str | None = TOKEN,
    data_dir: Path = typer.Option(..., "--data-dir", help="Identity, state and content store."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int | None = typer.Option(
        None, "--port", help="Port to listen on (default: last run's, else any free one; 0: any)."
    ),
    name: str | None = NAME,
    ip_address: list[str] | None = ADDRESSES,
    ad_site: str | None = AD_SITE,
    max_transfers: int | None = typer.Option(
        None,
        "--max-transfers",
        min=1,
        help="Downloads served at once; more get 503 + Retry-After. Overrides the site's "
        "setting for this DP (default: the site's, else 10).",
    ),
    bandwidth_limit: int | None = typer.Option(
        None, "--bandwidth-limit", min=1, help="Cap on pulling content, in bytes per second."
    ),
    url: str | None = typer.Option(
        None, "--url", help="The URL clients reach this DP at (default: from --host/--port)."
    ),
    poll_interval: float = typer.Option(
        300.0, "--poll-interval", min=0.1, help="Longest wait for a policy change, in seconds."
    ),
    retry_base: float = typer.Option(
        30.0, "--retry-base", min=0.01, help="First retry delay after a failed pull (doubles)."
    ),
    max_attempts: int = typer.Option(
        10, "--max-attempts", min=1, help="Failed pulls before a package is install_failed."
    ),
    validate_interval: str = typer.Option(
        "24h", "--validate-interval", help=VALIDATE_INTERVAL_HELP
    ),
    ca_file: Path | None = CA_FILE,
    tls_cert: Path | None = TLS_CERT,
    tls_key: Path | None = TLS_KEY,
    metrics_token: str | None = typer.Option(
        None,
        "--metrics-token",
        envvar="PEERDP_METRICS_TOKEN",
        help="Serve /metrics only to a bearer of this token (default: to anyone).",
    ),
    log_format: str | None = LOG_FORMAT,
) -> None:
    """Serve as a branch DP until SIGTERM: pull assigned packages, serve them to clients.

    It logs every pull (start, progress, resume, verification, publication) and state it
    reports on stderr; /metrics shows the bytes pulled as they arrive, and the bytes and
    requests it serves to clients.
    """
    from peerdp.cli.serving import (
        announce,
        options_checked,
        server_certificate,
        validate_interval_s,
    )
    from peerdp.dp.branch import BranchOptions, serve

    start_logging(log_format, "branch_dp")
    with options_checked():
        certificate = server_certificate(tls_cert, tls_key)
    options = BranchOptions(
        site_url=_site_url(site),
        token=token or "",
        data_dir=data_dir,
        host=host,
        port=port,
        public_url=url,
        name=name,
        ip_addresses=tuple(ip_address or ()),
        ad_site=ad_site,
        max_transfers=max_transfers,
        bandwidth_limit=bandwidth_limit,
        poll_interval_s=poll_interval,
        retry_base_s=retry_base,
        max_attempts=max_attempts,
        validate_interval_s=validate_interval_s(validate_interval),
        certificate=certificate,
        ca_file=ca_file,
        metrics_token=metrics_token,
    )
    try:
        with options_checked():
            serve(options, announce)
    except (MPError, OSError) as exc:
        fail(str(exc))


@branch_app.command("import")
def branch_import(
    file: Path = typer.Argument(
        ..., metavar="FILE", help="A prestage archive (peerdp package export)."
    ),
    data_dir: Path = typer.Option(
        ..., "--data-dir", help="The branch DP's data directory (as for `branch serve`)."
    ),
    ca_file: Path | None = CA_FILE,
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Load a prestage archive into this branch DP (no transfer over the WAN).

    The archive is checked against the site key pinned at registration, and
    every file against its SHA-256: a damaged or unsigned one is refused and
    nothing is stored. The site's row of the package becomes installed.
    The branch DP may be running.
    """
    from peerdp.cli.connection import fail
    from peerdp.cli.output import print_json, say
    from peerdp.domain.sizes import human_size
    from peerdp.dp.prestage import ImportRefused, import_prestage

    start_logging(None, "branch_dp", logging.WARNING)
    try:
        result = import_prestage(data_dir, file, ca_file)
    except ImportRefused as exc:
        fail(str(exc))
    if json_output:
        print_json(result.__dict__)
        return
    held = " (it was held already)" if result.already_held else ""
    say(
        f"Imported {result.package_id} source version {result.source_version}: "
        f"{result.files} file(s), {human_size(result.bytes)}, verified{held}.",
        "green",
    )
    if result.reported:
        say("The site now lists it installed on this branch DP.")
    else:
        reason = f" ({result.site_problem})" if result.site_problem else ""
        say(f"The site was not told{reason}: the branch DP reports it when it next reaches it.")


@client_app.command("run")
def client_run(
    site: str | None = SITE,
    token: str | None = TOKEN,
    data_dir: Path = typer.Option(..., "--data-dir", help="Identity, state, cache, packages."),
    once: bool = typer.Option(False, "--once", help="Run one evaluation cycle, then exit."),
    name: str | None = NAME,
    ip_address: list[str] | None = ADDRESSES,
    ad_site: str | None = AD_SITE,
    retry_interval: float = typer.Option(
        60.0,
        "--retry-interval",
        min=0,
        help="Seconds before a failed advertisement is tried again, doubled after each failure.",
    ),
    retry_max_interval: float = typer.Option(
        3600.0, "--retry-max-interval", min=0, help="The longest wait between two attempts."
    ),
    program_attempts: int = typer.Option(
        3, "--program-attempts", min=1, help="Runs of a failing program before it is failed."
    ),
    content_attempts: int = typer.Option(
        30,
        "--content-attempts",
        min=1,
        help="Attempts to get the content (no DP has it, or none serves it) before failing.",
    ),
    poll_interval: float = typer.Option(
        3600.0, "--poll-interval", min=0.1, help="Seconds between policy evaluations."
    ),
    cache_bytes: int = typer.Option(
        5 * 1024**3, "--cache-bytes", min=0, help="Cache size; least recently used goes first."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the outcomes as JSON."),
    verbose: bool = typer.Option(
        False,
        "--verbose",
        "-v",
        help="With --once, log what the agent does (it always does as a service).",
    ),
    ca_file: Path | None = CA_FILE,
    log_format: str | None = LOG_FORMAT,
) -> None:
    """Register (first run), then evaluate advertisements: locate, download, verify, run.

    With --once: exit 0 when every due advertisement ran successfully, 1 when one did
    not, 2 when no verified policy could be had. --once tries now an advertisement that
    waits for its next attempt; one that used its last attempt stays failed until rerun.

    A failed attempt is tried again after --retry-interval, doubled after each failure up
    to --retry-max-interval; a failing program runs --program-attempts times, content
    that no DP has is asked for --content-attempts times; then the advertisement is
    failed until the package's source version or the advertisement changes, or an
    administrator reruns it (peerdp advertisement rerun).
    """
    from peerdp.agents.client import ClientAgent, ClientOptions, single_instance
    from peerdp.cli.progress import terminal_progress
    from peerdp.cli.serving import options_checked
    from peerdp.domain.programs import RetryPolicy

    start_logging(log_format, "client", logging.INFO if verbose or not once else logging.WARNING)
    options = ClientOptions(
        retry=RetryPolicy(retry_interval, retry_max_interval, program_attempts, content_attempts),
        poll_interval_s=poll_interval,
        cache_bytes=cache_bytes,
        progress=None if json_output else terminal_progress,
    )
    facts = MachineFacts.detect(name, ip_address, ad_site)
    try:
        with options_checked(), single_instance(data_dir):
            identity = _client_identity(site, token, facts, data_dir, ca_file)
            if name is not None and name != identity.name:
                _log.warning(f"registered as {identity.name}; --name {name} ignored")
            mp = MPClient(identity, ca_file=ca_file)
            agent = ClientAgent(identity, mp, facts, data_dir, options)
            code = _once(agent, json_output) if once else _forever(agent)
    except (MPError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_NO_POLICY) from exc
    raise typer.Exit(code)


def _client_identity(
    site: str | None, token: str | None, facts: MachineFacts, data_dir: Path, ca_file: Path | None
) -> Identity:
    if token is None and load_identity(data_dir) is None:
        raise MPError("no identity in the data directory yet: pass --token to register")
    identity = enrol(_site_url(site), token or "", facts, data_dir, ca_file=ca_file, role="client")
    if identity.role != "client":
        raise MPError(f"{data_dir} holds a {identity.role} identity, not a client's")
    return identity


def _once(agent: ClientAgent, json_output: bool) -> int:
    from peerdp.agents.client import report_policy_error

    try:
        policy = agent.mp.policy()
    except MPError as exc:
        report_policy_error(agent.mp, exc)
        typer.echo(f"error: {exc}", err=True)
        return EXIT_NO_POLICY
    outcomes = agent.cycle(policy)
    if json_output:
        sys.stdout.write(json.dumps([o.to_json() for o in outcomes], indent=2) + "\n")
    for o in outcomes if not json_output else ():
        line = f"{o.result}: advertisement {o.advertisement_id} '{o.name}' "
        typer.echo(line + f"({o.package_id} v{o.source_version}) {o.detail}".rstrip())
    return 0 if all(o.ok for o in outcomes) else EXIT_FAILED


def _forever(agent: ClientAgent) -> int:
    from peerdp.agents.client import run_until_stopped

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _log.info(f"peerdp client {agent.identity.name} running")
    run_until_stopped(agent, stop)
    return 0
