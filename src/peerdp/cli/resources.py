"""The generic admin commands: list, show, create, change and delete any API resource.

Wherever a command takes an object, it takes its ID or its name (`package dp add PS100001
HQ-DP01`, `client show BR01-PC001`, `advertisement show "Acme to branch 01"`): `Lookup`
is the one resolver, used by every command, once connected. A path or a body value may
therefore be given unresolved (a `Ref`, or any function of the connection); the helpers
below resolve them before the call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

import typer

from peerdp.admin_client import AdminClient
from peerdp.cli.connection import JsonOption, SiteOption, connect, fail
from peerdp.cli.output import Column, a, emit, print_record, print_table, say
from peerdp.content.ids import is_package_id

Render = Callable[[Any], None]
# A path, or how to make it once connected (resolving names to IDs).
Where = str | Callable[[AdminClient], str]


def item_path(*parts: str | int) -> str:
    """`/packages/PS100001/programs/Install` with each part quoted for a URL path."""
    return "".join("/" + quote(str(part), safe="") for part in parts)


def at(api: AdminClient, where: Where) -> str:
    """The path `where` names, its names resolved through `api`."""
    return where if isinstance(where, str) else where(api)


def resolved(api: AdminClient, body: Mapping[str, Any]) -> dict[str, Any]:
    """`body` with each value given as a function of the connection (a name to resolve)
    replaced by its result."""
    return {key: value(api) if callable(value) else value for key, value in body.items()}


def drop_unset(**changes: Any) -> dict[str, Any]:
    """The options the administrator gave (None means not given)."""
    return {name: value for name, value in changes.items() if value is not None}


@dataclass(frozen=True)
class Lookup:
    """How to find one object of a top-level API collection (`/distribution-points`) from
    what an administrator types: its ID, or its name.

    A number is an ID (a package ID is `PS100001`, in any case); anything else is a name,
    matched exactly, else ignoring case, and refused when no object or several have it.
    """

    noun: str
    plural: str
    path: str
    numeric_id: bool = field(default=True, kw_only=True)
    named: bool = field(default=True, kw_only=True)
    # The list answers `?name=` itself (clients: too many to list in full).
    name_query: bool = field(default=False, kw_only=True)

    def resolve(self, api: AdminClient, ident: str) -> str:
        """The ID of the object `ident` names (its ID or its name)."""
        text = ident.strip()
        if self.numeric_id and text.isdigit():
            return text
        if not self.numeric_id and is_package_id(text):
            return text.upper()
        if not self.named:
            fail(f"{a(self.noun)} ID is a number, not {ident!r}")
        return str(self._by_name(api, text)["id"])

    def id_of(self, ident: str) -> Callable[[AdminClient], int | str]:
        """The ID `ident` names, as the API's bodies and filters take it, once connected."""

        def find(api: AdminClient) -> int | str:
            found = self.resolve(api, ident)
            return int(found) if self.numeric_id else found

        return find

    def ids_of(self, idents: Sequence[str]) -> Callable[[AdminClient], list[int | str]]:
        """The IDs `idents` name, once connected."""
        return lambda api: [self.id_of(ident)(api) for ident in idents]

    def item(self, ident: str, *rest: str | int) -> Ref:
        """The path of the object `ident` names (and of `rest` under it)."""
        return Ref(self, ident, item_path(*rest))

    def _by_name(self, api: AdminClient, name: str) -> Any:
        rows = api.get(self.path, {"name": name} if self.name_query else None)
        found = [row for row in rows if row.get("name") == name] or [
            row for row in rows if str(row.get("name", "")).casefold() == name.casefold()
        ]
        if not found:
            fail(f"no {self.noun} has the name or ID {name!r}")
        if len(found) > 1:
            ids = ", ".join(str(row["id"]) for row in found)
            fail(f"several {self.plural} are named {name!r} (IDs {ids}): give the ID")
        return found[0]


@dataclass(frozen=True)
class Ref:
    """The path of an object named by its ID or name, and of what is under it; resolved
    when called with the connection. `ref + "/versions"` names what is under it."""

    lookup: Lookup
    ident: str
    under: str = ""

    def __add__(self, suffix: str) -> Ref:
        return Ref(self.lookup, self.ident, self.under + suffix)

    def __call__(self, api: AdminClient) -> str:
        found = self.lookup.resolve(api, self.ident)
        return item_path(self.lookup.path.strip("/"), found) + self.under


# The objects other commands refer to (by ID or name) beyond their own group.
PACKAGE = Lookup("package", "packages", "/packages", numeric_id=False)
DP = Lookup("distribution point", "distribution points", "/distribution-points")
BOUNDARY = Lookup("boundary", "boundaries", "/boundaries")
COLLECTION = Lookup("collection", "collections", "/collections")
ADVERTISEMENT = Lookup("advertisement", "advertisements", "/advertisements")
CLIENT = Lookup("client", "clients", "/clients", name_query=True)


def list_rows(
    site: str | None,
    json_out: bool,
    path: Where,
    columns: Sequence[Column],
    *,
    empty: str,
    params: Mapping[str, Any] | None = None,
) -> None:
    """GET the rows at `path` with `params` (values may be names to resolve) as a table."""
    with connect(site) as api:
        rows = api.get(at(api, path), resolved(api, params or {}))
    emit(rows, json_out, lambda data: print_table(data, columns, empty=empty))


def show_item(site: str | None, json_out: bool, path: Where, render: Render | None = None) -> None:
    with connect(site) as api:
        row = api.get(at(api, path))
    emit(row, json_out, render or print_record)


def create_item(
    site: str | None,
    json_out: bool,
    path: Where,
    body: Mapping[str, Any],
    render: Render | None = None,
) -> Any:
    with connect(site) as api:
        row = api.post(at(api, path), resolved(api, body))
    emit(row, json_out, render or print_record)
    return row


def change_item(
    site: str | None,
    json_out: bool,
    path: Where,
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
        where = at(api, path)
        changes = resolved(api, changes)
        missing = [field for field in keep if field not in changes]
        if missing:
            current = api.get(where)
            changes = {**{field: current[field] for field in missing}, **changes}
        row = api.patch(where, changes)
    emit(row, json_out, render or print_record)


def delete_item(
    site: str | None, json_out: bool, path: Where, what: str, render: Render | None = None
) -> None:
    """DELETE `path`; most answers are empty (204), some say what happens next."""
    with connect(site) as api:
        where = at(api, path)
        answer = api.delete(where)
    if answer is None:
        emit({"deleted": where}, json_out, lambda _: say(f"Deleted {what}."))
    else:
        emit(answer, json_out, render or print_record)


@dataclass(frozen=True)
class Resource(Lookup):
    """A top-level API collection (`/boundaries`), how to find one of its objects, and how
    a table shows them."""

    columns: tuple[Column, ...] = ()

    def render_created(self, row: Any) -> None:
        say(f"Created {self.noun} {row.get('id')}.", "green")
        print_record(row)


IdArgument = Annotated[
    str,
    typer.Argument(metavar="ID_OR_NAME", help="The object's ID or name.", show_default=False),
]
# A package, wherever a command takes one as its argument.
PackageId = Annotated[
    str, typer.Argument(metavar="PACKAGE", help="Package ID (PS100001, any case) or name.")
]
# Objects with no name (enrolment tokens, on-demand requests) are taken by their ID.
NumberArgument = Annotated[
    str, typer.Argument(metavar="ID", help="The object's ID.", show_default=False)
]


def add_list(app: typer.Typer, res: Resource) -> None:
    @app.command("list", help=f"List the {res.plural}.")
    def list_(site: SiteOption = None, json_out: JsonOption = False) -> None:
        list_rows(site, json_out, res.path, res.columns, empty=f"No {res.plural}.")


def add_show(app: typer.Typer, res: Resource, render: Render | None = None) -> None:
    command = app.command("show", help=f"Show one {res.noun}.")

    def show(ident: str, site: str | None, json_out: bool) -> None:
        show_item(site, json_out, res.item(ident), render)

    if res.named:

        @command
        def by_id_or_name(
            ident: IdArgument, site: SiteOption = None, json_out: JsonOption = False
        ) -> None:
            show(ident, site, json_out)

    else:

        @command
        def by_id(
            ident: NumberArgument, site: SiteOption = None, json_out: JsonOption = False
        ) -> None:
            show(ident, site, json_out)


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
