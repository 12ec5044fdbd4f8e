"""The generic admin commands: list, show, create, change and delete any API resource."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

import typer

from peerdp.admin_client import Params
from peerdp.cli.connection import JsonOption, SiteOption, connect, fail
from peerdp.cli.output import Column, a, emit, print_record, print_table, say

Render = Callable[[Any], None]


def item_path(*parts: str | int) -> str:
    """`/packages/PS100001/programs/Install` with each part quoted for a URL path."""
    return "".join("/" + quote(str(part), safe="") for part in parts)


def drop_unset(**changes: Any) -> dict[str, Any]:
    """The options the administrator gave (None means not given)."""
    return {name: value for name, value in changes.items() if value is not None}


def list_rows(
    site: str | None,
    json_out: bool,
    path: str,
    columns: Sequence[Column],
    *,
    empty: str,
    params: Params | None = None,
) -> None:
    with connect(site) as api:
        rows = api.get(path, params)
    emit(rows, json_out, lambda data: print_table(data, columns, empty=empty))


def show_item(site: str | None, json_out: bool, path: str, render: Render | None = None) -> None:
    with connect(site) as api:
        row = api.get(path)
    emit(row, json_out, render or print_record)


def create_item(
    site: str | None,
    json_out: bool,
    path: str,
    body: Mapping[str, Any],
    render: Render | None = None,
) -> Any:
    with connect(site) as api:
        row = api.post(path, body)
    emit(row, json_out, render or print_record)
    return row


def change_item(
    site: str | None,
    json_out: bool,
    path: str,
    changes: Mapping[str, Any],
    render: Render | None = None,
    *,
    keep: Sequence[str] = ("name",),
) -> None:
    """PATCH `path` with the options given.

    Workaround: the API's PATCH bodies require some fields (`name`, an advertisement's
    `program_name`) even when they do not change; `keep` names them, sent unchanged.
    """
    if not changes:
        fail("nothing to change: give at least one option (see --help)")
    with connect(site) as api:
        missing = [field for field in keep if field not in changes]
        if missing:
            current = api.get(path)
            changes = {**{field: current[field] for field in missing}, **changes}
        row = api.patch(path, changes)
    emit(row, json_out, render or print_record)


def delete_item(
    site: str | None, json_out: bool, path: str, what: str, render: Render | None = None
) -> None:
    """DELETE `path`; most answers are empty (204), some say what happens next."""
    with connect(site) as api:
        answer = api.delete(path)
    if answer is None:
        emit({"deleted": path}, json_out, lambda _: say(f"Deleted {what}."))
    else:
        emit(answer, json_out, render or print_record)


@dataclass(frozen=True)
class Resource:
    """A top-level API collection (`/boundaries`) and how a table shows it."""

    noun: str
    plural: str
    path: str
    columns: tuple[Column, ...]
    numeric_id: bool = True

    def item(self, ident: str) -> str:
        if self.numeric_id and not ident.isdigit():
            fail(f"{a(self.noun)} ID is a number, not {ident!r}")
        return item_path(self.path.strip("/"), ident)

    def render_created(self, row: Any) -> None:
        say(f"Created {self.noun} {row.get('id')}.", "green")
        print_record(row)


IdArgument = Annotated[
    str, typer.Argument(metavar="ID", help="The object's ID.", show_default=False)
]


def add_list(app: typer.Typer, res: Resource) -> None:
    @app.command("list", help=f"List the {res.plural}.")
    def list_(site: SiteOption = None, json_out: JsonOption = False) -> None:
        list_rows(site, json_out, res.path, res.columns, empty=f"No {res.plural}.")


def add_show(app: typer.Typer, res: Resource, render: Render | None = None) -> None:
    @app.command("show", help=f"Show one {res.noun}.")
    def show(ident: IdArgument, site: SiteOption = None, json_out: JsonOption = False) -> None:
        show_item(site, json_out, res.item(ident), render)


def add_delete(app: typer.Typer, res: Resource) -> None:
    @app.command("delete", help=f"Delete {a(res.noun)}.")
    def delete(ident: IdArgument, site: SiteOption = None, json_out: JsonOption = False) -> None:
        delete_item(site, json_out, res.item(ident), f"{res.noun} {ident}")


def add_list_show_delete(
    app: typer.Typer, res: Resource, *, render: Render | None = None, delete: bool = True
) -> None:
    """Give `app` the `list`, `show ID` and (unless not wanted) `delete ID` commands of `res`."""
    add_list(app, res)
    add_show(app, res, render)
    if delete:
        add_delete(app, res)
