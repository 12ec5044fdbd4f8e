"""`peerdp status`: the status message log, and following it as it grows."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.text import Text

from peerdp.admin_client import AdminClient, Params
from peerdp.cli.connection import JsonOption, SiteOption, connect, fail
from peerdp.cli.output import STATE_STYLES, Column, console, emit, print_table, state, table, when
from peerdp.cli.resources import ADVERTISEMENT, DP, PACKAGE, resolved
from peerdp.cli.timespec import api_time
from peerdp.domain.status_types import (
    SEVERITIES,
    STATUS_COMPONENTS,
    Severity,
    StatusComponent,
)


def _package(row: Any) -> str | None:
    package, version = row.get("package_id"), row.get("source_version")
    if package is None:
        return None
    return f"{package} v{version}" if version is not None else str(package)


def _type(row: Any) -> Text:
    """The message's type, coloured by its severity (errors red, warnings yellow)."""
    return Text(str(row.get("type")), style=STATE_STYLES.get(str(row.get("severity")), ""))


WIDE_COLUMNS = (
    Column("ID", "id", justify="right"),
    Column("Time", "at", when, no_wrap=True),
    Column("Severity", "severity", state),
    Column("Component", lambda row: f"{row.get('component')} {row.get('source')}"),
    Column("Type", "type"),
    Column("Package", _package, no_wrap=True),
    Column("DP", "dp_id", justify="right"),
    Column("Client", "client_name"),
    Column("Adv.", "advertisement_id", justify="right"),
    Column("State", "state"),
    Column("Exit", "exit_code", justify="right"),
    Column("Detail", "detail"),
)
# What a person reads first: when, who, what, about which package, and in words.
COLUMNS = (
    Column("Time", "at", when, no_wrap=True),
    Column("From", "source"),
    Column("Type", lambda row: row, _type),
    Column("Package", _package, no_wrap=True),
    Column("Detail", "detail"),
)
DEFAULT_LIMIT = 100
PATH = "/status-messages"

app = typer.Typer(help="Status messages: what every component did.", no_args_is_help=True)


@app.command("list")
def list_(
    package: Annotated[
        str | None, typer.Option("--package", metavar="PACKAGE", help="Only this package.")
    ] = None,
    dp: Annotated[str | None, typer.Option("--dp", metavar="DP", help="Only this DP.")] = None,
    client: Annotated[
        str | None, typer.Option("--client", metavar="NAME", help="Only this client.")
    ] = None,
    advertisement: Annotated[
        str | None,
        typer.Option("--advertisement", metavar="ADVERTISEMENT", help="Only this advertisement."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="WHEN",
            help="Only from this time: 2h (the last two hours), 2024-05-01T08:00 (local).",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="WHEN",
            help="Only before this time: 1d (a day ago), 2024-05-01T08:00 (local); "
            "not with --follow.",
        ),
    ] = None,
    component: Annotated[
        StatusComponent | None,
        typer.Option(
            "--component",
            metavar="COMPONENT",
            help="Only messages written by this component: " + ", ".join(STATUS_COMPONENTS) + ".",
        ),
    ] = None,
    severity: Annotated[
        Severity | None,
        typer.Option(
            "--severity",
            metavar="SEVERITY",
            help="Only this severity: " + ", ".join(SEVERITIES) + ".",
        ),
    ] = None,
    type_: Annotated[
        str | None,
        typer.Option(
            "--type",
            metavar="TYPE",
            help="Only this type (e.g. content_location_failed; an unknown one is refused "
            "with the list).",
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option("--limit", metavar="N", min=1, max=10000, help="The newest N messages."),
    ] = DEFAULT_LIMIT,
    wide: Annotated[
        bool, typer.Option("--wide", help="Every column: ID, severity, DP, client, state, ...")
    ] = False,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Print the newest N oldest first, then each new message as it comes "
            "(Ctrl-C stops); with --json, one JSON object per line.",
        ),
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            "--interval", metavar="SECONDS", min=0.1, help="Seconds between checks with --follow."
        ),
    ] = 2.0,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """List the newest status messages first (100 unless --limit), with filters."""
    if follow and until is not None:
        fail("--until ends the list; it cannot be followed (give one or the other)")
    refs = {
        "package_id": PACKAGE.id_of(package) if package else None,
        "dp_id": DP.id_of(dp) if dp else None,
        "advertisement_id": ADVERTISEMENT.id_of(advertisement) if advertisement else None,
    }
    params: dict[str, Any] = {
        "client_name": client,
        "type": type_,
        "since": api_time(since, durations_ago=True),
        "until": api_time(until, durations_ago=True),
        "component": component,
        "severity": severity,
        "limit": limit,
        "newest": "true",
    }
    columns = WIDE_COLUMNS if wide else COLUMNS
    with connect(site) as api:
        params = resolved(api, {**refs, **params})
        rows = api.get(PATH, params)
        if not follow:
            emit(rows, json_out, lambda data: print_table(data, columns, empty="No messages."))
            return
        try:
            _follow(api, {**params, "newest": None}, rows[::-1], json_out, interval, columns)
        except KeyboardInterrupt:
            raise typer.Exit(0) from None


def _follow(
    api: AdminClient,
    params: Params,
    rows: list[Any],
    json_out: bool,
    interval: float,
    columns: tuple[Column, ...],
) -> None:
    """Print `rows` (oldest first), then every newer message as it comes (by `after_id`)."""
    first = True
    while True:
        _print_batch(rows, json_out, columns, header=first)
        first = first and not rows
        if rows:
            params = {**params, "after_id": rows[-1]["id"], "since": None}
        if rows and len(rows) >= int(params.get("limit") or 1000):
            rows = api.get(PATH, params)
            continue
        time.sleep(interval)
        rows = api.get(PATH, params)


def _print_batch(
    rows: list[Any], json_out: bool, columns: tuple[Column, ...], *, header: bool
) -> None:
    if json_out:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False), flush=True)
    elif rows:
        console().print(table(rows, columns, header=header))
