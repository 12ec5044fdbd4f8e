"""`peerdp audit`: the changes made through the admin API, newest first."""

from __future__ import annotations

from typing import Annotated

import typer

from peerdp.cli.connection import JsonOption, SiteOption, connect
from peerdp.cli.output import Column, emit, print_table, when
from peerdp.cli.timespec import api_time

COLUMNS = (
    Column("ID", "id", justify="right"),
    Column("Time", "at", when, no_wrap=True),
    Column("Who", "who"),
    Column("Role", "role"),
    Column("Method", "method"),
    Column("Path", "path"),
    Column("Status", "status", justify="right"),
)


def audit(
    who: Annotated[
        str | None,
        typer.Option(
            "--who", metavar="NAME", help="Only this account's (admin-token: the site's token)."
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="WHEN",
            help="Only from this time: 2h (the last two hours), 2024-05-01T08:00 (local).",
        ),
    ] = None,
    path: Annotated[
        str | None,
        typer.Option("--path", metavar="PREFIX", help="Only paths starting so: /api/v1/packages."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", min=1, max=100000, help="The newest N entries.")
    ] = 100,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """The audit log: every change asked of the admin API (and each refusal), who asked
    and with which role, newest first."""
    with connect(site) as api:
        rows = api.audit(
            who=who,
            since=api_time(since, durations_ago=True),
            path_prefix=path,
            limit=limit,
        )
    emit(rows, json_out, lambda data: print_table(data, COLUMNS, empty="No audit entries."))
