"""`peerdp boundary`: network locations and their connection class."""

from __future__ import annotations

from typing import Annotated

import typer

from peerdp.cli.connection import JsonOption, SiteOption
from peerdp.cli.output import Column, when
from peerdp.cli.resources import (
    IdArgument,
    Resource,
    add_list_show_delete,
    change_item,
    create_item,
    drop_unset,
)
from peerdp.domain.boundaries import BoundaryType, Connection

BOUNDARIES = Resource(
    "boundary",
    "boundaries",
    "/boundaries",
    (
        Column("ID", "id", justify="right"),
        Column("Name", "name"),
        Column("Type", "type"),
        Column("Value", "value"),
        Column("Connection", "connection"),
        Column("Created", "created_at", when, no_wrap=True),
    ),
)

TYPE_HELP = "ip_subnet (CIDR), ip_range (first-last address) or ad_site."
VALUE_HELP = "10.1.0.0/16, 10.1.0.1-10.1.0.200, fd00::/64 or BRANCH-01."
CONNECTION_HELP = "fast (LAN) or slow (slow or unreliable link)."

app = typer.Typer(
    help="Boundaries: IP subnets, IP ranges and AD sites, fast or slow.", no_args_is_help=True
)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name for the boundary.")],
    type_: Annotated[BoundaryType, typer.Option("--type", metavar="TYPE", help=TYPE_HELP)],
    value: Annotated[str, typer.Option("--value", help=VALUE_HELP)],
    connection: Annotated[Connection, typer.Option("--connection", help=CONNECTION_HELP)] = "fast",
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Add a boundary."""
    body = {"name": name, "type": type_, "value": value, "connection": connection}
    create_item(site, json_out, BOUNDARIES.path, body, BOUNDARIES.render_created)


@app.command("set")
def set_(
    ident: IdArgument,
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    type_: Annotated[
        BoundaryType | None, typer.Option("--type", metavar="TYPE", help=TYPE_HELP)
    ] = None,
    value: Annotated[str | None, typer.Option("--value", help=VALUE_HELP)] = None,
    connection: Annotated[
        Connection | None, typer.Option("--connection", help=CONNECTION_HELP)
    ] = None,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Change a boundary (only the options given)."""
    changes = drop_unset(name=name, type=type_, value=value, connection=connection)
    change_item(site, json_out, BOUNDARIES.item(ident), changes)


add_list_show_delete(app, BOUNDARIES)
