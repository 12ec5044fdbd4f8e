"""`peerdp token`: enrolment tokens, with which clients and DPs join the site."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import typer

from peerdp.cli.connection import JsonOption, SiteOption
from peerdp.cli.output import Column, print_record, say, when
from peerdp.cli.resources import (
    DP,
    NumberArgument,
    Resource,
    add_list_show_delete,
    create_item,
    delete_item,
    drop_unset,
)
from peerdp.cli.timespec import parse_duration
from peerdp.domain.timestamps import rfc3339

TOKENS = Resource(
    "enrolment token",
    "enrolment tokens",
    "/enrolment-tokens",
    (
        Column("ID", "id", justify="right"),
        Column("Role", "role"),
        Column("DP", "dp_id", justify="right"),
        Column("Used", lambda row: f"{row.get('uses')}/{row.get('max_uses')}", justify="right"),
        Column("Expires", "expires_at", when, no_wrap=True),
        Column("Created", "created_at", when, no_wrap=True),
    ),
    named=False,
)

app = typer.Typer(
    help="Enrolment tokens: how clients and DPs register with the site.", no_args_is_help=True
)


def _created(row: Any) -> None:
    say(f"Created enrolment token {row['id']} ({row['role']}). It is shown only this once:")
    say(row["token"], "bold")
    print_record(row, TOKENS.columns[1:])


@app.command("create")
def create(
    role: Annotated[
        Literal["client", "branch_dp", "standard_dp"],
        typer.Option(
            "--role",
            metavar="ROLE",
            help="Who may register with it: client, branch_dp or standard_dp.",
        ),
    ],
    dp: Annotated[
        str | None,
        typer.Option(
            "--dp", metavar="DP", help="The DP (ID or name) that registers with it (DP roles)."
        ),
    ] = None,
    uses: Annotated[
        int, typer.Option("--uses", metavar="N", min=1, help="How many registrations it allows.")
    ] = 1,
    expires_in: Annotated[
        str | None,
        typer.Option("--expires-in", metavar="DURATION", help="Valid for 1h, 2d, 1w, ..."),
    ] = None,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Make an enrolment token (the token is printed once, never again)."""
    expires_at = None
    if expires_in is not None:
        expires_at = rfc3339(datetime.now(UTC) + parse_duration(expires_in))
    dp_id = DP.id_of(dp) if dp is not None else None
    body = drop_unset(role=role, dp_id=dp_id, max_uses=uses, expires_at=expires_at)
    create_item(site, json_out, TOKENS.path, body, _created)


@app.command("revoke")
def revoke(ident: NumberArgument, site: SiteOption = None, json_out: JsonOption = False) -> None:
    """Revoke an enrolment token (machines already registered stay registered)."""
    delete_item(site, json_out, TOKENS.item(ident), f"enrolment token {ident}")


add_list_show_delete(app, TOKENS, delete=False)
