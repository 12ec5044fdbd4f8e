"""`peerdp collection`: named sets of machines."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.columns import Columns

from peerdp.cli.connection import JsonOption, SiteOption, connect
from peerdp.cli.output import Column, console, count, emit, print_record, say, when
from peerdp.cli.resources import (
    IdArgument,
    Resource,
    add_list_show_delete,
    at,
    change_item,
    create_item,
    drop_unset,
)

COLLECTIONS = Resource(
    "collection",
    "collections",
    "/collections",
    (
        Column("ID", "id", justify="right"),
        Column("Name", "name"),
        Column("Members", "member_names", count, justify="right"),
        Column("Created", "created_at", when, no_wrap=True),
    ),
)

Members = Annotated[
    list[str] | None,
    typer.Option("--member", metavar="MACHINE", help="A member's machine name (repeatable)."),
]
MachineNames = Annotated[list[str], typer.Argument(metavar="MACHINE...", help="Machine names.")]

app = typer.Typer(help="Collections: named sets of machines.", no_args_is_help=True)


def render(collection: Any) -> None:
    """The collection's facts, then its members."""
    print_record(collection, COLLECTIONS.columns)
    names = collection.get("member_names") or []
    if names:
        console().print(Columns(names, padding=(0, 2)))


def _created(collection: Any) -> None:
    say(f"Created collection {collection['id']}.", "green")
    render(collection)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    member: Members = None,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create a collection, with members if given."""
    body = {"name": name, "member_names": member or []}
    create_item(site, json_out, COLLECTIONS.path, body, _created)


@app.command("add-members")
def add_members(
    ident: IdArgument,
    names: MachineNames,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Add machines to a collection (names already in it are kept once)."""
    with connect(site) as api:
        path = at(api, COLLECTIONS.item(ident, "members"))
        collection = api.post(path, {"member_names": names})
    emit(collection, json_out, render)


@app.command("remove-member")
def remove_member(
    ident: IdArgument,
    name: Annotated[str, typer.Argument(metavar="MACHINE", help="Machine name.")],
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Take one machine out of a collection."""
    with connect(site) as api:
        collection = api.delete(at(api, COLLECTIONS.item(ident, "members", name)))
    emit(collection, json_out, render)


@app.command("set")
def set_(
    ident: IdArgument,
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    member: Members = None,
    site: SiteOption = None,
    json_out: JsonOption = False,
) -> None:
    """Rename a collection, or replace all its members (--member, repeated)."""
    changes = drop_unset(name=name, member_names=member)
    change_item(site, json_out, COLLECTIONS.item(ident), changes, render)


add_list_show_delete(app, COLLECTIONS, render=render)
