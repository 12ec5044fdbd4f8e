"""`peerdp admin account`: administrators' credentials with a role (needs the full role).

Roles: `full` (everything), `operator` (actions on deployments and DPs, no configuration),
`read_only` (reads only). The secret is printed once, at creation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import typer

from peerdp.cli.connection import JsonOption, SiteOption, connect
from peerdp.cli.output import Column, emit, print_record, say, when
from peerdp.cli.resources import IdArgument, Resource, add_list, add_show
from peerdp.cli.timespec import parse_duration
from peerdp.domain.timestamps import rfc3339

ACCOUNTS = Resource(
    "admin account",
    "admin accounts",
    "/admin-accounts",
    (
        Column("ID", "id", justify="right"),
        Column("Name", "name"),
        Column("Role", "role"),
        Column("Created", "created_at", when, no_wrap=True),
        Column("Last used", "last_used_at", when, no_wrap=True),
        Column("Expires", "expires_at", when, no_wrap=True),
        Column("Revoked", "revoked_at", when, no_wrap=True),
    ),
)

app = typer.Typer(help="The site's administrators.", no_args_is_help=True)
accounts = typer.Typer(
    help="Administrator accounts with a role: full, operator or read_only (needs full).",
    no_args_is_help=True,
)
app.add_typer(accounts, name="account")


def _created(row: Any) -> None:
    say(f"Created admin account {row['name']!r} ({row['role']}). Its secret is shown only once:")
    say(row["token"], "bold")
    print_record(row, ACCOUNTS.columns[1:])


@accounts.command("add")
def add(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Who holds it (shown in the audit log).")
    ],
    role: Annotated[
        Literal["full", "operator", "read_only"],
        typer.Option(
            "--role",
            metavar="ROLE",
            help="full (everything), operator (actions on deployments and DPs, no "
            "configuration) or read_only (reads only).",
        ),
    ],
    expires_in: Annotated[
        str | None,
        typer.Option(
            "--expires-in", "--expires", metavar="DURATION", help="Valid for 8h, 30d, 1w, ..."
        ),
    ] = None,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Make an administrator account (its secret is printed once, never again)."""
    expires_at = None
    if expires_in is not None:
        expires_at = rfc3339(datetime.now(UTC) + parse_duration(expires_in))
    with connect(site) as api:
        row = api.create_admin_account(name, role, expires_at=expires_at)
    emit(row, json_out, _created)


@accounts.command("revoke")
def revoke(ident: IdArgument, site: SiteOption = None, json_out: JsonOption = False) -> None:
    """Revoke an account: its secret stops working at once (the account stays listed)."""
    with connect(site) as api:
        row = api.revoke_admin_account(int(ACCOUNTS.resolve(api, ident)))
    emit(row, json_out, lambda r: say(f"Revoked admin account {r['name']!r}."))


add_list(accounts, ACCOUNTS)
add_show(accounts, ACCOUNTS)
